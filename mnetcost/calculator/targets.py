"""Microcontroller boards with their SRAM and Flash, and whether a model fits one.

Each figure is the vendor's datasheet figure (named in ``docs/targets.md``). ``sram_bytes`` is the
largest *contiguous* block of data SRAM, where one activation arena can live (on the STM32F746 the
DTCM, SRAM1 and SRAM2 are adjacent, so all 320 KiB; on the STM32H743 the 1 MiB of RAM is split
into separate regions and the largest is the 512 KiB AXI SRAM). ``flash_bytes`` is the Flash that
holds the weights: on-chip for the STM32s and the nRF52840; the RP2040 and ESP32-S3 have none on
chip, so the board's (or the in-package) QSPI Flash is named. Firmware, the runtime, the stack
and I/O buffers need some of both: a model that fits with a small margin may still not run.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from mnetcost.errors import ConfigError

KIB = 1024
MIB = 1024 * 1024
# Flash kept for the application beside the model and the runtime when no --flash-reserve is given: a
# small bare-metal program (startup code, vector table, HAL and clock setup, a sensor or camera driver,
# printf over a UART) takes some tens of KiB on a Cortex-M.
DEFAULT_FLASH_RESERVE = 32 * KIB
# The names of the tflite-micro builds (the keys of mnetcost.calculator.tflm.BUILDS, which holds their sizes),
# here so that the options can offer them without loading the TFLM model.
TFLM_BUILD_NAMES = ("host64", "arm32")


class Target(NamedTuple):
    name: str  # what --target takes
    board: str
    sram_bytes: int
    flash_bytes: int
    sram_note: str
    flash_note: str
    datasheet: str
    # The tflite-micro build (mnetcost.calculator.tflm.BUILDS) whose struct layout the board's compiler
    # gives: every board here is 32-bit with 4-byte pointers and 8-byte aligned int64 and double (ARM
    # EABI; the ESP32-S3's Xtensa ABI aligns them alike).
    tflm_build: str = "arm32"

    def as_dict(self) -> dict:
        return {"name": self.name, "board": self.board, "sram_bytes": self.sram_bytes,
                "flash_bytes": self.flash_bytes, "sram_note": self.sram_note, "flash_note": self.flash_note,
                "datasheet": self.datasheet, "tflm_build": self.tflm_build}


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("stm32f746", "STMicroelectronics STM32F746 (Cortex-M7, 216 MHz; the MCU of MCUNet)",
               320 * KIB, 1 * MIB, "320 KiB SRAM (64 KiB DTCM + 240 KiB SRAM1 + 16 KiB SRAM2, contiguous)",
               "1 MiB on-chip Flash", "ST DS10916, STM32F745xx/STM32F746xx datasheet"),
        Target("stm32h743", "STMicroelectronics STM32H743 (Cortex-M7, 480 MHz)",
               512 * KIB, 2 * MIB, "512 KiB AXI SRAM, the largest of its RAM regions (1 MiB in all: "
                                   "128 KiB DTCM, 512 KiB AXI, 288 KiB SRAM1-3, 64 KiB SRAM4, 64 KiB ITCM)",
               "2 MiB on-chip Flash", "ST DS12110, STM32H742xI/G STM32H743xI/G datasheet"),
        Target("nrf52840", "Nordic Semiconductor nRF52840 (Cortex-M4F, 64 MHz)",
               256 * KIB, 1 * MIB, "256 KiB RAM", "1 MiB on-chip Flash", "Nordic nRF52840 Product Specification"),
        Target("rp2040", "Raspberry Pi RP2040 on the Raspberry Pi Pico (2x Cortex-M0+, 133 MHz)",
               264 * KIB, 2 * MIB, "264 KiB SRAM (four striped 64 KiB banks + two 4 KiB banks, contiguous)",
               "2 MiB QSPI Flash on the Pico board (the RP2040 has no on-chip Flash)",
               "Raspberry Pi RP2040 Datasheet; Raspberry Pi Pico Datasheet"),
        Target("esp32s3", "Espressif ESP32-S3 (2x Xtensa LX7, 240 MHz), ESP32-S3FN8",
               512 * KIB, 8 * MIB, "512 KiB internal SRAM (without the 16 KiB RTC SRAM or external PSRAM)",
               "8 MiB in-package Flash of the ESP32-S3FN8 (the chip itself has none)",
               "Espressif ESP32-S3 Series Datasheet"),
    )
}


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in TARGETS:
        raise ConfigError(f"unknown target {name!r} (one of {', '.join(TARGETS)})")
    return TARGETS[key]


SOURCES = ("target", "max_peak_memory", "max_weight_bytes")  # where a budget came from


class Budgets(NamedTuple):
    """The SRAM and Flash budgets in force and where each came from: ``"target"`` (the board's
    figure), ``"max_peak_memory"``/``"max_weight_bytes"`` (the user's own budget, which replaces
    the board's), or None (no budget). A budget of 0 bytes is a budget (nothing fits it)."""

    sram_bytes: int | None
    flash_bytes: int | None
    board: Target | None
    sram_source: str | None
    flash_source: str | None


def used_fraction(need: int, budget: int | None) -> float | None:
    """``need / budget`` (1.0 = exactly full); infinite for a need against a zero budget; None
    without a budget."""
    if budget is None:
        return None
    if budget == 0:
        return math.inf if need > 0 else 0.0
    return need / budget


class Fit(NamedTuple):
    """Whether a model's RAM need (``peak_activation_bytes``: the peak activations, or TFLM's arena)
    fits the SRAM budget and its Flash need (``weight_bytes``: the sum of ``flash_parts``, e.g. the
    model file, the runtime's code and the application's reserve) the Flash budget, and by how much
    (margin = budget - need; negative when it does not fit); each budget's source as in
    :class:`Budgets`."""

    peak_activation_bytes: int
    weight_bytes: int
    sram_bytes: int | None
    flash_bytes: int | None
    target: str | None = None
    sram_source: str | None = None
    flash_source: str | None = None
    flash_parts: tuple = ()  # ((what, bytes), ...) adding up to weight_bytes; empty: the need is one part

    @property
    def fits_sram(self) -> bool:
        return self.sram_bytes is None or self.peak_activation_bytes <= self.sram_bytes

    @property
    def fits_flash(self) -> bool:
        return self.flash_bytes is None or self.weight_bytes <= self.flash_bytes

    @property
    def fits(self) -> bool:
        return self.fits_sram and self.fits_flash

    @property
    def sram_margin_bytes(self) -> int | None:
        return None if self.sram_bytes is None else self.sram_bytes - self.peak_activation_bytes

    @property
    def flash_margin_bytes(self) -> int | None:
        return None if self.flash_bytes is None else self.flash_bytes - self.weight_bytes

    @property
    def binding(self) -> str | None:
        """The constraint nearer its budget (the larger used fraction, SRAM on a tie): ``sram`` or
        ``flash``; a zero budget binds as soon as anything needs it."""
        used = {name: fraction for name, fraction in (
            ("sram", used_fraction(self.peak_activation_bytes, self.sram_bytes)),
            ("flash", used_fraction(self.weight_bytes, self.flash_bytes))) if fraction is not None}
        return max(used, key=used.get) if used else None

    def as_dict(self) -> dict:
        return {"target": self.target, "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
                "sram_source": self.sram_source, "flash_source": self.flash_source,
                "fits": self.fits, "fits_sram": self.fits_sram, "fits_flash": self.fits_flash,
                "sram_margin_bytes": self.sram_margin_bytes, "flash_margin_bytes": self.flash_margin_bytes,
                "binding": self.binding, "ram_need_bytes": self.peak_activation_bytes,
                "flash_need_bytes": self.weight_bytes,
                "flash_need_parts": dict(self.flash_parts) or {"model": self.weight_bytes}}


def budgets(target: str | Target | None = None, max_peak_memory: int | None = None,
            max_weight_bytes: int | None = None) -> Budgets:
    """The budgets in force (:class:`Budgets`): a target's figures, each replaced by an explicit
    budget when one is given. A negative budget is an error; 0 is a budget."""
    for value, what in ((max_peak_memory, "--max-peak-memory"), (max_weight_bytes, "--max-weight-bytes")):
        if value is not None and value < 0:
            raise ConfigError(f"{what} must not be negative, got {value}")
    board = get_target(target) if target is not None else None

    def pick(own, board_value, option):
        if own is not None:
            return int(own), option
        return (board_value, "target") if board is not None else (None, None)

    sram, sram_source = pick(max_peak_memory, board and board.sram_bytes, "max_peak_memory")
    flash, flash_source = pick(max_weight_bytes, board and board.flash_bytes, "max_weight_bytes")
    return Budgets(sram, flash, board, sram_source, flash_source)


def fit(peak_activation_bytes: int, weight_bytes: int, target: str | Target | None = None,
        max_peak_memory: int | None = None, max_weight_bytes: int | None = None, flash_parts=None) -> Fit:
    """Does a model with these figures fit ``target`` (or the explicit budgets, which override it)?
    ``flash_parts`` (``{what: bytes}``), when given, is what the Flash need is made of; its sum must
    be ``weight_bytes``."""
    chosen = budgets(target, max_peak_memory, max_weight_bytes)
    parts = tuple((str(k), int(v)) for k, v in (flash_parts or {}).items())
    if parts and sum(v for _, v in parts) != int(weight_bytes):
        raise ValueError(f"flash parts {dict(parts)} do not add up to {weight_bytes}")
    return Fit(int(peak_activation_bytes), int(weight_bytes), chosen.sram_bytes, chosen.flash_bytes,
               chosen.board.name if chosen.board else None, chosen.sram_source, chosen.flash_source, parts)
