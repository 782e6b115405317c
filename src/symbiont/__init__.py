"""symbiont: evolve native Rust functions with an LLM inside a running Python process."""
