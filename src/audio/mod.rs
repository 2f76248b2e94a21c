//! Audio core: G.711 μ-law, resampling, WAV and the endpointer.
