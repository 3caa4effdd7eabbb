//! Placeholder until the helper lands the codec.
