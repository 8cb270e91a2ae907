"""What the volunteer is doing: which listed programs run (psutil), and how long the
keyboard and mouse have been idle (where the desktop tells).

Both are blocking calls: the agent runner calls them in a worker thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import subprocess
import sys
from collections.abc import Iterable

import psutil


def programs_running(names: Iterable[str]) -> list[str]:
    """Which of ``names`` run now, as listed (case-insensitive; ``.exe`` optional)."""

    def key(name: str) -> str:
        name = name.strip().lower()
        return name[:-4] if name.endswith(".exe") else name

    wanted = {key(n): n for n in names if n.strip()}
    if not wanted:
        return []
    found: set[str] = set()
    for proc in psutil.process_iter(["name", "exe"]):
        candidates = [proc.info.get("name") or ""]
        exe = proc.info.get("exe") or ""
        if exe:
            candidates.append(os.path.basename(exe))
        for candidate in candidates:
            if candidate and key(candidate) in wanted:
                found.add(wanted[key(candidate)])
    return sorted(found)


def idle_seconds() -> float | None:
    """Seconds since the last keyboard or mouse input, or None where it cannot be read
    (a Wayland session without an idle interface, a machine without a desktop)."""
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            return _windows_idle()
        if sys.platform == "darwin":  # pragma: no cover - macOS only
            return _mac_idle()
        return _x11_idle()
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _windows_idle() -> float:  # pragma: no cover - Windows only
    class LastInputInfo(ctypes.Structure):
        _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]

    info = LastInputInfo()
    info.cbSize = ctypes.sizeof(info)
    windll = ctypes.windll  # type: ignore[attr-defined]
    if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
        raise OSError("GetLastInputInfo failed")
    return float((windll.kernel32.GetTickCount() - info.dwTime) & 0xFFFFFFFF) / 1000.0


def _mac_idle() -> float:  # pragma: no cover - macOS only
    out = subprocess.run(
        ["ioreg", "-c", "IOHIDSystem", "-d", "4"], capture_output=True, text=True, timeout=5
    ).stdout
    match = re.search(r'"HIDIdleTime" = (\d+)', out)
    if match is None:
        raise ValueError("no HIDIdleTime")
    return int(match.group(1)) / 1e9


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("eventMask", ctypes.c_ulong),
    ]


def _x11_idle() -> float | None:
    """The X server's idle time (the MIT-SCREEN-SAVER extension, libXss)."""
    if not os.environ.get("DISPLAY"):
        return None
    x11_name, xss_name = ctypes.util.find_library("X11"), ctypes.util.find_library("Xss")
    if not x11_name or not xss_name:
        return None
    x11, xss = ctypes.cdll.LoadLibrary(x11_name), ctypes.cdll.LoadLibrary(xss_name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
    xss.XScreenSaverQueryInfo.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.POINTER(_XScreenSaverInfo),
    ]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        info = xss.XScreenSaverAllocInfo()
        if not xss.XScreenSaverQueryInfo(display, x11.XDefaultRootWindow(display), info):
            return None
        return float(info.contents.idle) / 1000.0
    finally:
        x11.XCloseDisplay(display)


__all__ = ["idle_seconds", "programs_running"]
