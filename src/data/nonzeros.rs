//! The nonzero pixels of every image, found once per dataset, so that a batch reaches the
//! sparse first layer already in CSR form (81% of MNIST's pixels are zero): gathering a batch's
//! nonzeros costs a fraction of scanning its dense values.

use super::pixels::scale_bytes;
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
    /// (byte / 255), so that it describes exactly the dense batch. The row pointers come
    /// first (a running sum of the images' counts); then every image's nonzeros go to their
    /// place, halves of the batch on the pool's threads (shuffled images are scattered over
    /// the dataset, so the copy waits on memory, not on arithmetic).
    pub fn gather(&self, indices: &[u32], csr: &mut Compressed) {
        csr.ptr.clear();
        csr.ptr.push(0);
        let mut total = 0u32;
        for &i in indices {
            total += self.offsets[i as usize + 1] - self.offsets[i as usize];
            csr.ptr.push(total);
        }
        csr.idx.resize(total as usize, 0);
        csr.vals.resize(total as usize, 0.0);
        self.fill(indices, &csr.ptr, &mut csr.idx, &mut csr.vals);
    }

    /// The nonzeros of the images `indices`, one after the other, into `idx` and `vals`
    /// (exactly their length); `ptr` holds the batch's row pointers for these images (one
    /// more than them), which say where to split.
    fn fill(&self, indices: &[u32], ptr: &[u32], idx: &mut [u32], vals: &mut [f32]) {
        const IMAGES_PER_TASK: usize = 64;
        if indices.len() > IMAGES_PER_TASK {
            let mid = indices.len() / 2;
            let (first, second) = indices.split_at(mid);
            let len = (ptr[mid] - ptr[0]) as usize;
            let (idx_a, idx_b) = idx.split_at_mut(len);
            let (vals_a, vals_b) = vals.split_at_mut(len);
            rayon::join(
                || self.fill(first, &ptr[..=mid], idx_a, vals_a),
                || self.fill(second, &ptr[mid..], idx_b, vals_b),
            );
            return;
        }
        let mut at = 0;
        for &i in indices {
            let (lo, hi) = (
                self.offsets[i as usize] as usize,
                self.offsets[i as usize + 1] as usize,
            );
            let end = at + hi - lo;
            idx[at..end].copy_from_slice(&self.pos[lo..hi]);
            scale_bytes(&mut vals[at..end], &self.val[lo..hi]);
            at = end;
        }
    }

    /// The fraction of pixels that are nonzero.
    pub fn density(&self, item: usize) -> f32 {
        let n = self.offsets.len() - 1;
        self.pos.len() as f32 / (n * item).max(1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::sparse_linear::to_csr;

    #[test]
    fn a_gathered_batch_is_the_csr_of_its_dense_images() {
        // enough images that the gather splits the batch between threads, in a shuffled order
        // with repeats, some images all zero
        let (n, item) = (300, 20);
        let mut rng = crate::rng::Rng::seed(3);
        let images: Vec<u8> = (0..n * item)
            .map(|p| {
                if p / item % 7 == 0 || rng.next_f32() < 0.7 {
                    0
                } else {
                    1 + (rng.next_f32() * 254.0) as u8
                }
            })
            .collect();
        let nz = Nonzeros::new(&images, item);
        let indices: Vec<u32> = (0..250).map(|k| (k * 37 % n) as u32).collect();
        let mut got = Compressed::default();
        nz.gather(&indices, &mut got);
        let dense: Vec<f32> = indices
            .iter()
            .flat_map(|&i| &images[i as usize * item..(i as usize + 1) * item])
            .map(|&b| b as f32 / 255.0)
            .collect();
        let mut want = Compressed::default();
        to_csr(&dense, item, &mut want);
        assert_eq!(got.ptr, want.ptr);
        assert_eq!(got.idx, want.idx);
        assert_eq!(got.vals, want.vals);
        // a smaller batch into the same buffers leaves nothing of the larger one behind
        nz.gather(&indices[..3], &mut got);
        assert_eq!(got.ptr.len(), 4);
        assert_eq!(got.idx.len(), *got.ptr.last().unwrap() as usize);
        assert_eq!(got.vals.len(), got.idx.len());
    }
}
