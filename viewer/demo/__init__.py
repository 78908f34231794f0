"""The demo: an OpenAI-compatible replay server over recorded traces, and the trace format it reads.

`seeds.py` reads and writes the traces in `seeds/` (format in `seeds/README.md`); `replay.py` serves them in
every dialect a real server uses (inline markers, reasoning fields, harmony), with fault injection, for the
app's demo mode (`reasoning-viewer --demo`), for `reasoning-viewer serve-demo` and for the tests.
Nothing here is used on the path of a real reply.
"""
