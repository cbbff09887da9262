"""PCM conversion, resampling and container encoding for the HTTP responses."""

from server.audio.writer import CONTENT_TYPES, AudioWriter, check_output_supported, fix_wav_sizes

__all__ = ["AudioWriter", "CONTENT_TYPES", "check_output_supported", "fix_wav_sizes"]
