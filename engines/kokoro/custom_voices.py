"""Kokoro's voices beyond the weights' own: operators' voicepack directories and voices saved over the API.

At load, :func:`build_bank` adds every directory of ``voices_dir`` (TTS_KOKORO_VOICES_DIR) to the weights' voices,
then the voices saved earlier (the server's data directory, which the server passes in as the
engine's ``voice_store``). :class:`SavedVoices` then adds and removes saved voices while the model
serves: a mix of loaded voices is blended once and stored as a voicepack, an uploaded file is
checked and stored as one. Files are written off the event loop; the bank itself is changed on the
event loop only, where requests read it, so a request sees a voice whole or not at all (and keeps
the tensor it resolved even if its voice is deleted while it speaks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from engines.base import NewVoice, Voice
from engines.errors import InvalidRequest, ServiceUnavailable, VoiceNotFound
from engines.kokoro.voicepacks import (
    BadVoicepack,
    VoiceMeta,
    check_name,
    delete_pack,
    lang_code_of,
    listed_language,
    meta_for,
    tensor_from_bytes,
    write_pack,
)
from engines.kokoro.voices import VoiceBank

logger = logging.getLogger(__name__)


def build_bank(weights_voices: Path, device: str, directories: Sequence[Path], store: Path | None) -> VoiceBank:
    """The weights' voices, then each voicepack directory in order, then the saved voices (blocking)."""
    bank = VoiceBank(weights_voices, device)
    for directory in directories:
        bank.add_directory(Path(directory).expanduser())
    if store is not None and store.is_dir():
        bank.add_directory(store, kind="saved")
    return bank


class SavedVoices:
    def __init__(self, bank: VoiceBank, store: Path | None, limit: int) -> None:
        self.bank = bank
        self.store = store
        self.limit = limit
        self._busy: set[str] = set()  # lowercased names being written or deleted right now

    async def add(self, new: NewVoice) -> Voice:
        name = self._name(new.name)
        if self.store is None:
            raise ServiceUnavailable("This server has no data directory to save voices in (TTS_DATA_DIR).")
        if (new.mix is None) == (new.data is None):
            raise InvalidRequest("Give either 'voice' (a voice or mix to save) or a voicepack file, not both.")
        saved = sum(v.kind == "saved" for v in self.bank.voices()) + len(self._busy)  # with those being saved
        if saved >= self.limit:
            raise InvalidRequest(
                f"This server keeps at most {self.limit} saved voices (TTS_KOKORO_MAX_SAVED_VOICES); delete one first.",
                param="name",
            )
        self._claim(name)  # from here until it is stored, no other request can take the name
        try:
            tensor, meta = await self._source(name, new)
            meta = self._override(meta, new)
            sidecar = {**meta.as_json(), "saved_at": int(time.time())}
            await asyncio.to_thread(write_pack, self.store, name, tensor, sidecar)
        finally:
            self._busy.discard(name.lower())
        voice = self.bank.add(name, tensor, meta, "saved")
        logger.info("kokoro voices: saved '%s' (%s)", name, meta.source or new.filename or "an upload")
        return voice

    async def _source(self, name: str, new: NewVoice) -> tuple[torch.Tensor, VoiceMeta]:
        """The tensor to store, blended from the mix or read from the upload, and what it describes."""
        bank = self.bank
        if new.mix is not None:
            mix = bank.resolve(new.mix)  # an unknown voice or a bad spec: InvalidVoice (400)
            spec = "+".join(f"{voice}({weight:.6g})" for voice, weight in mix.parts)
            base = bank.info(mix.primary)
            meta = VoiceMeta(bank.lang_codes[mix.primary], base.language, base.gender, None, spec)
            return bank.pack(mix).detach().cpu(), meta
        origin = new.filename or "the uploaded file"
        try:
            tensor = await asyncio.to_thread(tensor_from_bytes, new.data, origin)
        except BadVoicepack as exc:
            raise InvalidRequest(str(exc), param="file", code="invalid_voicepack") from None
        return tensor, meta_for(name)

    async def remove(self, name: str) -> None:
        bank = self.bank
        found = bank.find(name)
        if found is None:
            raise VoiceNotFound(f"There is no voice '{name}' to delete.")
        kind = bank.info(found).kind
        if kind == "builtin":
            raise InvalidRequest(f"'{found}' is one of the model's own voices; it cannot be deleted.", param="name")
        if kind != "saved":
            raise InvalidRequest(
                f"'{found}' comes from a voicepack directory (TTS_KOKORO_VOICES_DIR); remove its file there.",
                param="name",
            )
        if found.lower() in self._busy:
            raise InvalidRequest(f"Voice '{found}' is being saved or deleted right now; retry.", param="name")
        self._busy.add(found.lower())
        try:
            bank.remove(found)  # first: no new request can pick it up while its files go
            await asyncio.to_thread(delete_pack, self.store, found)
        finally:
            self._busy.discard(found.lower())
        logger.info("kokoro voices: deleted '%s'", found)

    # -- checks -------------------------------------------------------------------------------------
    def _name(self, name: str) -> str:
        try:
            return check_name(name.strip())
        except BadVoicepack as exc:
            raise InvalidRequest(str(exc), param="name", code="invalid_voice_name") from None

    def _claim(self, name: str) -> None:
        taken = self.bank.find(name)
        if taken is not None or name.lower() in self._busy:
            kind = self.bank.info(taken).kind if taken else "saved"
            raise InvalidRequest(
                f"A {kind} voice named '{taken or name}' exists already; choose another name"
                + (" or delete it first." if kind == "saved" else "."),
                param="name",
                code="voice_exists",
            )
        self._busy.add(name.lower())

    @staticmethod
    def _override(meta: VoiceMeta, new: NewVoice) -> VoiceMeta:
        lang_code, language = meta.lang_code, meta.language
        if new.language:
            try:
                lang_code = lang_code_of(new.language)
            except BadVoicepack as exc:
                raise InvalidRequest(str(exc), param="language") from None
            language = listed_language(new.language.strip(), lang_code)
        return VoiceMeta(
            lang_code,
            language,
            new.gender or meta.gender,
            new.description or meta.description,
            meta.source,
        )
