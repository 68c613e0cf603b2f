//! A small deterministic generator (xorshift64) for the library's tests.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Mostly ordinary values, sometimes one of `edges`.
    pub(crate) fn pick<T: Copy>(&mut self, edges: &[T], ordinary: impl FnOnce(&mut Rng) -> T) -> T {
        if self.below(8) == 0 { edges[self.below(edges.len() as u64) as usize] } else { ordinary(self) }
    }
}
