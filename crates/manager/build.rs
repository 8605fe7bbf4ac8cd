//! Embedded migrations do not trigger a rebuild when a migration file changes; this does.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
