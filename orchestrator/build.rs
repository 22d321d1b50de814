//! The shipped workflows are built into the binary (`include_dir!` in `src/offered.rs`):
//! rebuild when any of them changes.
fn main() {
    println!("cargo:rerun-if-changed=../workflows");
}
