"""The demo: the whole pipeline as resumable stages, then figures and a report.

`delg_tools.demo` (delg-demo, `make demo`) parses the flags and calls this package. It sits at the
end of the data flow: it may import every delg_tf package, and none imports it.
"""
