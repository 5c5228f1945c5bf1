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
    pos: Positions,
    val: Vec<u8>,
}

/// The nonzeros' positions within their image: two bytes each while an image has at most
/// 65,536 values (MNIST's 784, CIFAR's 3,072), four beyond. MNIST's training set has 8.9
/// million nonzeros, so the narrow form keeps 18 MB less resident for the whole run.
#[derive(Debug, Clone)]
enum Positions {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Default for Positions {
    fn default() -> Self {
        Positions::Narrow(Vec::new())
    }
}

impl Positions {
    fn len(&self) -> usize {
        match self {
            Positions::Narrow(p) => p.len(),
            Positions::Wide(p) => p.len(),
        }
    }

    /// Positions `lo..hi` into `dst` (of that length), as the u32 a CSR batch holds.
    fn copy_to(&self, lo: usize, hi: usize, dst: &mut [u32]) {
        match self {
            Positions::Narrow(p) => {
                for (d, &s) in dst.iter_mut().zip(&p[lo..hi]) {
                    *d = s as u32;
                }
            }
            Positions::Wide(p) => dst.copy_from_slice(&p[lo..hi]),
        }
    }
}

/// Every (position, value) of the nonzero bytes of `images`, each `item` long, in order, with
/// `offsets` ending each image: the store is counted first and allocated once at its exact
/// size (pushing into growing vectors left their outgrown copies resident in the heap, which
/// `alloc_tuning` keeps, and the run's peak memory then varied by 18 MB from run to run).
fn scan<P: Copy>(
    images: &[u8],
    item: usize,
    at: impl Fn(usize) -> P,
) -> (Vec<u32>, Vec<P>, Vec<u8>) {
    let count = images.iter().filter(|&&b| b != 0).count();
    let mut offsets = Vec::with_capacity(images.len() / item + 1);
    let (mut pos, mut val) = (Vec::with_capacity(count), Vec::with_capacity(count));
    offsets.push(0);
    for img in images.chunks_exact(item) {
        for (k, &b) in img.iter().enumerate() {
            if b != 0 {
                pos.push(at(k));
                val.push(b);
            }
        }
        offsets.push(pos.len() as u32);
    }
    (offsets, pos, val)
}

impl Nonzeros {
    /// Scan `images` (each `item` bytes).
    pub fn new(images: &[u8], item: usize) -> Nonzeros {
        if item == 0 {
            return Nonzeros {
                offsets: vec![0],
                ..Default::default()
            };
        }
        if item <= 1 << 16 {
            let (offsets, pos, val) = scan(images, item, |k| k as u16);
            Nonzeros {
                offsets,
                pos: Positions::Narrow(pos),
                val,
            }
        } else {
            let (offsets, pos, val) = scan(images, item, |k| k as u32);
            Nonzeros {
                offsets,
                pos: Positions::Wide(pos),
                val,
            }
        }
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
            self.pos.copy_to(lo, hi, &mut idx[at..end]);
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

    /// `n` images of `item` bytes, some all zero, the rest 30% nonzero.
    fn images(n: usize, item: usize) -> Vec<u8> {
        let mut rng = crate::rng::Rng::seed(3);
        (0..n * item)
            .map(|p| {
                if (p / item).is_multiple_of(7) || rng.next_f32() < 0.7 {
                    0
                } else {
                    1 + (rng.next_f32() * 254.0) as u8
                }
            })
            .collect()
    }

    /// The gathered batch `indices` against `to_csr` of its dense form.
    fn assert_gather_is_csr(images: &[u8], item: usize, indices: &[u32]) -> Compressed {
        let nz = Nonzeros::new(images, item);
        let mut got = Compressed::default();
        nz.gather(indices, &mut got);
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
        got
    }

    #[test]
    fn images_beyond_two_byte_positions_gather_whole() {
        // 70,000 values per image: positions past 65,535 need the four-byte store
        let item = 70_000;
        let mut imgs = images(3, item);
        imgs[item + 69_999] = 200; // the last value of the second image
        let got = assert_gather_is_csr(&imgs, item, &[1, 2, 1]);
        assert!(got.idx.contains(&69_999));
    }

    #[test]
    fn a_gathered_batch_is_the_csr_of_its_dense_images() {
        // enough images that the gather splits the batch between threads, in a shuffled order
        // with repeats, some images all zero
        let (n, item) = (300, 20);
        let images = images(n, item);
        let indices: Vec<u32> = (0..250).map(|k| (k * 37 % n) as u32).collect();
        let mut got = assert_gather_is_csr(&images, item, &indices);
        let nz = Nonzeros::new(&images, item);
        // a smaller batch into the same buffers leaves nothing of the larger one behind
        nz.gather(&indices[..3], &mut got);
        assert_eq!(got.ptr.len(), 4);
        assert_eq!(got.idx.len(), *got.ptr.last().unwrap() as usize);
        assert_eq!(got.vals.len(), got.idx.len());
    }
}
