"""Random-weight models in the real architectures' layouts, for benchmarks and the tests (no download).

Shipped in the wheel, so an installed `tts-server bench engine --orpheus-tiny` builds its model too.
"""
