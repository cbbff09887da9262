"""hexgrad/Kokoro-82M on the ``kokoro`` library (KModel + misaki G2P)."""
