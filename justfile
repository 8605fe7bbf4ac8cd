# Short recipes for developers. `just` is on PyPI as rust-just: pip install rust-just

# Every suite, as CI runs it.
test:
    cargo xtask test

# Only the Rust tests, skipping fmt/clippy.
quick:
    cargo test --workspace

# The demo farm: a manager and two workers with a sample job.
demo:
    cargo run --release -p castanet -- demo

# Lints as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# A manager on this machine, config in ./castanet-manager.toml.
manager:
    cargo run -p castanet -- manager
