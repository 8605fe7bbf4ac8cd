//! Embedded migrations do not trigger a rebuild when a migration file changes; this does.
//! The dashboard is (re)built here when needed, see `build_dashboard.rs`.
#[path = "build_dashboard.rs"]
mod build_dashboard;

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    build_dashboard::embed_dashboard();
}
