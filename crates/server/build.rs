//! The dashboard (web/dist, built by `npm run build` in web/) is embedded at
//! compile time (crates/server/src/web.rs): rebuild when it changes, or
//! appears after a build without it.
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
