"""absl binaries (installed as the `delg_tools` package); each is a thin `main` over delg_tf."""
