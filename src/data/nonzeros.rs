//! The nonzero pixels of every image, found once per dataset, so that a batch reaches the
//! sparse first layer already in CSR form (81% of MNIST's pixels are zero): gathering a batch's
//! nonzeros costs a fraction of scanning its dense values.

use crate::kernels::sparse_linear::Compressed;

/// Per image, the positions and byte values of its nonzero pixels.
#[derive(Debug, Clone, Default)]
pub struct Nonzeros {
    /// (len + 1) offsets into `pos` and `val`.
    offsets: Vec<u32>,
    pos: Vec<u32>,
    val: Vec<u8>,
}

impl Nonzeros {
    /// Scan `images` (each `item` bytes).
    pub fn new(images: &[u8], item: usize) -> Nonzeros {
        let mut nz = Nonzeros {
            offsets: vec![0],
            ..Default::default()
        };
        if item == 0 {
            return nz;
        }
        for img in images.chunks_exact(item) {
            for (k, &b) in img.iter().enumerate() {
                if b != 0 {
                    nz.pos.push(k as u32);
                    nz.val.push(b);
                }
            }
            nz.offsets.push(nz.pos.len() as u32);
        }
        nz
    }

    /// The CSR form of the batch `indices`, values scaled as `gather_batch` scales them
    /// (byte / 255), so that it describes exactly the dense batch.
    pub fn gather(&self, indices: &[u32], csr: &mut Compressed) {
        csr.ptr.clear();
        csr.idx.clear();
        csr.vals.clear();
        csr.ptr.push(0);
        for &i in indices {
            let (lo, hi) = (
                self.offsets[i as usize] as usize,
                self.offsets[i as usize + 1] as usize,
            );
            csr.idx.extend_from_slice(&self.pos[lo..hi]);
            csr.vals
                .extend(self.val[lo..hi].iter().map(|&b| b as f32 / 255.0));
            csr.ptr.push(csr.idx.len() as u32);
        }
    }

    /// The fraction of pixels that are nonzero.
    pub fn density(&self, item: usize) -> f32 {
        let n = self.offsets.len() - 1;
        self.pos.len() as f32 / (n * item).max(1) as f32
    }
}
