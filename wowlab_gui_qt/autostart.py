"""Start at login: one code path for the three desktops.

* Linux (and other XDG desktops): ``$XDG_CONFIG_HOME/autostart/wowlab-node.desktop``.
* Windows: the value ``wowlab-node`` under ``HKCU\\...\\CurrentVersion\\Run``.
* macOS: ``~/Library/LaunchAgents/org.wowlab.node.plist``, a LaunchAgent run at load.

:func:`autostart_entry` computes what to write (pure, so tests check the content of all
three on any machine); :func:`enable` and :func:`disable` write or remove it.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

APP_ID = "wowlab-node"
MAC_LABEL = "org.wowlab.node"
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


@dataclass(frozen=True)
class AutostartEntry:
    """What makes the app start at login on one platform."""

    platform: str  # linux, windows, darwin
    #: A file path, or the registry key (under HKEY_CURRENT_USER) on Windows.
    location: str
    #: The file's text, or the registry value (a command line) on Windows.
    content: str
    #: The registry value's name on Windows (empty elsewhere).
    value_name: str = ""


def gui_command(profile: str = "default") -> list[str]:
    """The command that starts the app minimized to the tray, for this installation."""
    here = Path(sys.executable).parent
    script = here / ("wowlab-gui.exe" if sys.platform == "win32" else "wowlab-gui")
    if script.exists():
        command = [str(script)]
    else:
        python = here / "pythonw.exe" if sys.platform == "win32" else Path(sys.executable)
        command = [str(python if python.exists() else sys.executable), "-m", "wowlab_gui_qt"]
    command.append("--minimized")
    if profile != "default":
        command += ["--profile", profile]
    return command


def _desktop_exec(command: list[str]) -> str:
    """A command line for a desktop entry's ``Exec`` key (the XDG quoting rules)."""
    out = []
    for arg in command:
        arg = arg.replace("%", "%%")
        if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
            out.append(arg)
            continue
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        out.append(f'"{escaped}"')
    return " ".join(out)


def autostart_entry(
    platform: str,
    command: list[str],
    *,
    home: Path,
    config_home: Path | None = None,
) -> AutostartEntry:
    """What to write so ``command`` runs at login on ``platform`` (``sys.platform`` form)."""
    if platform == "win32":
        return AutostartEntry(
            "windows", WINDOWS_RUN_KEY, subprocess.list2cmdline(command), value_name=APP_ID
        )
    if platform == "darwin":
        plist = {
            "Label": MAC_LABEL,
            "ProgramArguments": command,
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
        path = home / "Library" / "LaunchAgents" / f"{MAC_LABEL}.plist"
        return AutostartEntry("darwin", str(path), plistlib.dumps(plist).decode())
    base = config_home or home / ".config"
    text = "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=wowlab node",
            "Comment=Run World of Warcraft simulations for your wowlab pool",
            f"Exec={_desktop_exec(command)}",
            "Terminal=false",
            "Categories=Network;",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )
    return AutostartEntry("linux", str(base / "autostart" / f"{APP_ID}.desktop"), text)


def current_entry(profile: str = "default") -> AutostartEntry:
    """The entry for this machine and this installation."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return autostart_entry(
        sys.platform,
        gui_command(profile),
        home=Path.home(),
        config_home=Path(xdg) if xdg else None,
    )


def enable(entry: AutostartEntry) -> None:
    """Make the app start at login."""
    if entry.platform == "windows":
        _registry_set(entry, entry.content)
        return
    path = Path(entry.location)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(entry.content, encoding="utf-8")
    tmp.replace(path)


def disable(entry: AutostartEntry) -> None:
    """Stop the app from starting at login (nothing to do if it did not)."""
    if entry.platform == "windows":
        _registry_set(entry, None)
        return
    Path(entry.location).unlink(missing_ok=True)


def is_enabled(entry: AutostartEntry) -> bool:
    """Whether the app starts at login with exactly this entry."""
    if entry.platform == "windows":
        return _registry_get(entry) == entry.content
    path = Path(entry.location)
    return path.is_file() and path.read_text(encoding="utf-8") == entry.content


def _registry_set(entry: AutostartEntry, value: str | None) -> None:
    """Set (or with None, delete) the Run key's value."""
    if sys.platform != "win32":
        raise OSError("the Windows registry exists on Windows only")
    import winreg

    if value is not None:
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, entry.location) as key:
            winreg.SetValueEx(key, entry.value_name, 0, winreg.REG_SZ, value)
        return
    try:
        with winreg.OpenKey(
            winreg.HKEY_CURRENT_USER, entry.location, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.DeleteValue(key, entry.value_name)
    except FileNotFoundError:
        pass


def _registry_get(entry: AutostartEntry) -> str | None:
    if sys.platform != "win32":
        return None
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, entry.location) as key:
            value, _ = winreg.QueryValueEx(key, entry.value_name)
    except FileNotFoundError:
        return None
    return str(value)


__all__ = [
    "APP_ID",
    "MAC_LABEL",
    "WINDOWS_RUN_KEY",
    "AutostartEntry",
    "autostart_entry",
    "current_entry",
    "disable",
    "enable",
    "gui_command",
    "is_enabled",
]
