//! TEMPORARY stand-in so the pipeline compiles; replaced by the real splitter.
pub const DEFAULT_MAX_CHARS: usize = 200;
pub struct SentenceSplitter(String);
impl SentenceSplitter {
    pub fn new(_max: usize) -> Self {
        SentenceSplitter(String::new())
    }
    pub fn push(&mut self, d: &str) -> Vec<String> {
        self.0.push_str(d);
        Vec::new()
    }
    pub fn finish(&mut self) -> Option<String> {
        Some(std::mem::take(&mut self.0)).filter(|s| !s.is_empty())
    }
}
