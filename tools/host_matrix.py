#!/usr/bin/env python3
"""Loads the JiT-Music bundles in real hosts and checks what comes out (driven by
tools/host-matrix.sh, which installs the hosts and starts JACK).

  host_matrix.py carla --format clap|vst3 --carla DIR --bundle PATH [--bpm 100] [--bars 16]
  host_matrix.py carla-editor --format clap|vst3 --carla DIR --bundle PATH   (needs DISPLAY)
  host_matrix.py pedalboard --bundle PATH.vst3
  host_matrix.py dawdreamer --bundle PATH.vst3

Each prints one JSON line: {"host", "format", "checks": {name: [ok, detail]}}; the exit status is 0
when every check passed. Carla runs on JACK (dummy driver) as timebase master at a set tempo; a
JACK client records the plugin's MIDI output against the JACK transport frame, so every note is
checked against the host's bar grid (tick x samples per tick), its note-off, and the state that
a saved project restores.
"""

import argparse
import base64
import json
import os
import sys
import tempfile
import time

SR = 48_000
PPQ = 960

# Two bars of 4/4 (ticks, PPQ 960): a chord, a line on eighths, a note ending on the loop end and
# one crossing the bar line; every note-off has a place to go.
NOTES = [
    [0, 1920, 48, 100],
    [0, 960, 60, 90],
    [0, 960, 64, 90],
    [960, 1440, 67, 80],
    [1440, 1920, 69, 80],
    [1920, 2880, 72, 100],
    [2880, 4800, 71, 70],
    [4800, 5760, 67, 90],
    [5760, 7680, 55, 100],
]
BAR_TICKS = 3840
BARS = 2
SESSION = {
    "version": 1,
    "ideas": [{"id": 7, "bars": BARS, "bar_ticks": BAR_TICKS, "notes": NOTES}],
    "current": 0,
}


def plugin_state(clap):
    """nice-plug state: JSON; CLAP prefixes its length (8 bytes, little endian)."""
    js = json.dumps({"version": "0.1.0", "params": {},
                     "fields": {"session": json.dumps(SESSION)}}).encode()
    return (len(js).to_bytes(8, "little") + js) if clap else js


def expected_notes(bars, spt):
    """(on frame, off frame, key) of every note over `bars` bars, from transport frame 0."""
    out = []
    for cycle in range(bars // BARS):
        base = cycle * BARS * BAR_TICKS
        for s, e, k, _ in NOTES:
            out.append((round((base + s) * spt), round((base + e) * spt), k))
    return sorted(out, key=lambda n: (n[0], n[2]))


def pair_notes(events):
    """[(frame, on, key)] -> [(on frame, off frame or None, key)], and the problems found."""
    open_, pairs, problems = {}, [], []
    for f, on, k in events:
        if on:
            if k in open_:
                problems.append(f"doubled note-on {k} at {f}")
            open_[k] = f
        elif k in open_:
            pairs.append((open_.pop(k), f, k))
        else:
            problems.append(f"note-off for silent key {k} at {f}")
    pairs += [(f, None, k) for k, f in open_.items()]
    return sorted(pairs, key=lambda n: (n[0], n[2])), problems


def check_played(events, bars, spt, stop_frame):
    """The checks on one run: count, grid placement, note-offs (notes cut by the stop end there).
    Notes that start after the last bar (the transport stops a cycle later) only need their
    note-off."""
    want = expected_notes(bars, spt)
    pairs, problems = pair_notes(events)
    end = round(bars * BAR_TICKS * spt)
    problems += [f"no note-off for {k} from {on}" for on, off, k in pairs
                 if on >= end and off is None]
    pairs = [p for p in pairs if p[0] < end]
    checks = {}
    checks["note-ons"] = [len(pairs) == len(want), f"{len(pairs)} of {len(want)}"]
    worst = 0.0
    off_bad = 0
    bad = []
    for (on, off, k), (won, woff, wk) in zip(pairs, want):
        worst = max(worst, abs(on - won) if k == wk else float("inf"))
        wend = min(woff, stop_frame)
        if off is None or abs(off - wend) > 1.5:
            off_bad += 1
            bad.append(f"key {k} off at {off}, not {wend}")
    checks["on the bar grid"] = [worst <= 1.5 and len(pairs) == len(want),
                                 f"worst {worst:.1f} samples"]
    checks["note-offs"] = [off_bad == 0 and not problems,
                           f"{len(pairs) - off_bad} of {len(pairs)} at their tick or the stop"
                           + (f"; {(bad + problems)[:3]}" if bad or problems else "")]
    return checks


# ---- Carla ----------------------------------------------------------------------------------

class Recorder:
    """A JACK client that timestamps MIDI with the JACK transport frame of its cycle."""

    def __init__(self):
        import jack
        self.jack = jack
        self.client = jack.Client("jit-recorder", no_start_server=True)
        self.port = self.client.midi_inports.register("in")
        self.events = []
        self.cycles = 0
        # Transport frames where JACK reported an xrun: a late client's output may be lost there.
        self.xruns = []

        @self.client.set_xrun_callback
        def xrun(delay):
            self.xruns.append(self.client.transport_query()[1]["frame"])

        @self.client.set_process_callback
        def process(frames):
            state, pos = self.client.transport_query()
            self.cycles += 1
            for offset, data in self.port.incoming_midi_events():
                data = bytes(data)
                if len(data) == 3 and data[0] & 0xE0 == 0x80:
                    on = data[0] & 0xF0 == 0x90 and data[2] > 0
                    self.events.append((pos["frame"] + offset, on, data[1],
                                        state == jack.ROLLING))

        self.client.activate()

    def connect_from(self, name_part):
        for _ in range(50):
            ports = [p for p in self.client.get_ports(is_midi=True, is_output=True)
                     if name_part.lower() in p.name.lower()]
            if ports:
                if self.port.name not in [p.name for p in
                                          self.client.get_all_connections(ports[0])]:
                    self.client.connect(ports[0], self.port)
                return ports[0].name
            time.sleep(0.1)
        raise RuntimeError(f"no MIDI output port with '{name_part}': "
                           f"{[p.name for p in self.client.get_ports(is_midi=True)]}")

    def transport_frame(self):
        return self.client.transport_query()[1]["frame"]


def carla_host(carla_dir):
    sys.path.insert(0, os.path.join(carla_dir, "source", "frontend"))
    import carla_backend as cb
    host = cb.CarlaHostDLL(os.path.join(carla_dir, "bin", "libcarla_standalone2.so"), False)
    host.set_engine_option(cb.ENGINE_OPTION_PROCESS_MODE,
                           cb.ENGINE_PROCESS_MODE_MULTIPLE_CLIENTS, "")
    host.set_engine_option(cb.ENGINE_OPTION_TRANSPORT_MODE, cb.ENGINE_TRANSPORT_MODE_JACK, "")
    return host, cb


def idle(host, seconds):
    end = time.time() + seconds
    while time.time() < end:
        host.engine_idle()
        time.sleep(0.02)


def play_bars(host, rec, bars, spt):
    """Relocate to 0, play `bars` bars, stop; the recorded events and the stop frame."""
    host.transport_pause()
    idle(host, 0.3)
    host.transport_relocate(0)
    idle(host, 0.3)
    rec.events.clear()
    host.transport_play()
    end = round(bars * BAR_TICKS * spt)
    deadline = time.time() + bars * BAR_TICKS * spt / SR * 2 + 10
    while rec.transport_frame() < end and time.time() < deadline:
        host.engine_idle()
        time.sleep(0.01)
    host.transport_pause()
    idle(host, 0.5)
    stop = rec.transport_frame()
    # Everything up to the stop, as (frame, on, key); offs sent on the stop block come with it.
    return [(f, on, k) for f, on, k, _ in rec.events], stop


def play_checked(host, rec, bars, spt):
    """Play and check; a run with JACK xruns that failed is played again (up to 3 times): the
    matrix measures the plugin, not a busy machine. The xruns of the kept run are reported."""
    for attempt in range(1, 4):
        rec.xruns.clear()
        events, stop = play_bars(host, rec, bars, spt)
        checks = check_played(events, bars, spt, stop)
        if all(v[0] for v in checks.values()) or not rec.xruns:
            break
    checks["JACK xruns"] = [True, f"{len(rec.xruns)} in the kept run (attempt {attempt})"]
    return checks


def run_carla(args):
    host, cb = carla_host(args.carla)
    fmt = args.format
    checks = {}
    if not host.engine_init("JACK", "carla-matrix"):
        raise RuntimeError("Carla engine: " + host.get_last_error())
    rec = Recorder()
    ptype = cb.PLUGIN_CLAP if fmt == "clap" else cb.PLUGIN_VST3
    label = "org.jit-music.jit-music" if fmt == "clap" else ""
    if not host.add_plugin(cb.BINARY_NATIVE, ptype, args.bundle, "JiT-Music", label, 0, None, 0):
        raise RuntimeError("add_plugin: " + host.get_last_error())
    info = host.get_plugin_info(0)
    audio = host.get_audio_port_count_info(0)
    midi = host.get_midi_port_count_info(0)
    category = next((k[len("PLUGIN_CATEGORY_"):].lower() for k, v in vars(cb).items()
                     if k.startswith("PLUGIN_CATEGORY_") and v == info["category"]), "?")
    checks["loads"] = [True, f"category {category}, audio {audio['ins']}/{audio['outs']},"
                             f" MIDI {midi['ins']}/{midi['outs']}"]
    host.set_option(0, cb.PLUGIN_OPTION_USE_CHUNKS, True)
    host.set_chunk_data(0, base64.b64encode(plugin_state(fmt == "clap")).decode())
    host.set_active(0, True)
    host.transport_bpm(args.bpm)
    idle(host, 1.0)
    port = rec.connect_from("JiT-Music")
    spt = SR * 60.0 / (args.bpm * PPQ)
    checks.update(play_checked(host, rec, args.bars, spt))
    checks["port"] = [True, port]

    # Save the project, close everything, reopen it: the same idea plays.
    with tempfile.TemporaryDirectory() as d:
        proj = os.path.join(d, "matrix.carxp")
        saved = host.save_project(proj)
        host.remove_all_plugins()
        idle(host, 0.5)
        host.engine_close()
        rec.client.deactivate()
        rec.client.close()
        host2, _ = carla_host(args.carla)
        if not host2.engine_init("JACK", "carla-matrix"):
            raise RuntimeError("Carla engine: " + host2.get_last_error())
        rec = Recorder()
        loaded = saved and host2.load_project(proj)
        host2.transport_bpm(args.bpm)
        idle(host2, 1.5)
        rec.connect_from("JiT-Music")
        again = play_checked(host2, rec, 4, spt)
        ok = bool(loaded) and all(v[0] for v in again.values())
        checks["state after save/reload"] = [ok, "4 bars: " + again["note-ons"][1]
                                             + ", " + again["on the bar grid"][1]]
        host2.engine_close()
    return checks


def run_carla_editor(args):
    """The editor inside Carla (Dummy driver, internal transport) on the X display in DISPLAY:
    opened while stopped, then the host plays; screenshots of the screen must change with no
    input event (the playhead moves), and stop changing once stopped."""
    import ctypes
    import hashlib
    import subprocess
    # Carla's editor window looks UTF8_STRING up without creating it; a bare Xvfb lacks it.
    x11 = ctypes.CDLL("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(None)
    if not dpy:
        raise RuntimeError("no X display")
    x11.XInternAtom(dpy, b"UTF8_STRING", 0)
    x11.XFlush(dpy)
    sys.path.insert(0, os.path.join(args.carla, "source", "frontend"))
    import carla_backend as cb
    host = cb.CarlaHostDLL(os.path.join(args.carla, "bin", "libcarla_standalone2.so"), False)
    host.set_engine_option(cb.ENGINE_OPTION_PROCESS_MODE, cb.ENGINE_PROCESS_MODE_CONTINUOUS_RACK, "")
    host.set_engine_option(cb.ENGINE_OPTION_TRANSPORT_MODE, cb.ENGINE_TRANSPORT_MODE_INTERNAL, "")
    if not host.engine_init("Dummy", "carla-editor"):
        raise RuntimeError("Carla engine: " + host.get_last_error())
    clap = args.format == "clap"
    ptype = cb.PLUGIN_CLAP if clap else cb.PLUGIN_VST3
    label = "org.jit-music.jit-music" if clap else ""
    if not host.add_plugin(cb.BINARY_NATIVE, ptype, args.bundle, "JiT-Music", label, 0, None, 0):
        raise RuntimeError("add_plugin: " + host.get_last_error())
    host.set_option(0, cb.PLUGIN_OPTION_USE_CHUNKS, True)
    host.set_chunk_data(0, base64.b64encode(plugin_state(clap)).decode())
    host.set_active(0, True)
    host.show_custom_ui(0, True)

    def shots(n):
        out = []
        for _ in range(n):
            idle(host, 0.4)
            img = subprocess.run(["xwd", "-root", "-silent"], capture_output=True, check=True)
            out.append(hashlib.md5(img.stdout).hexdigest())
        return out

    idle(host, 2.0)
    host.transport_play()
    playing = shots(12)
    host.transport_pause()
    idle(host, 1.0)
    stopped = shots(4)
    host.show_custom_ui(0, False)
    idle(host, 0.5)
    host.engine_close()
    moving, still = len(set(playing)), len(set(stopped))
    return {"editor repaints while playing": [moving >= 10, f"{moving} distinct of 12 screenshots"],
            "and rests when stopped": [still == 1, f"{still} distinct of 4"]}


# ---- pedalboard / DawDreamer ----------------------------------------------------------------

JUCE_B64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_b64(data):
    """JUCE's MemoryBlock::toBase64Encoding: 'size.' then 6-bit groups, little-endian."""
    v = int.from_bytes(data, "little")
    n = (len(data) * 8 + 5) // 6
    return f"{len(data)}." + "".join(JUCE_B64[(v >> (6 * i)) & 63] for i in range(n))


def juce_unb64(text):
    size, chars = text.split(".", 1)
    v = sum(JUCE_B64.index(c) << (6 * i) for i, c in enumerate(chars))
    return v.to_bytes(int(size) + 8, "little")[:int(size)]


def juce_vst3_state(component):
    """A JUCE VST3 host state ('VC2!', XML length, XML) holding `component` (our JSON)."""
    xml = ('<?xml version="1.0" encoding="UTF-8"?> <VST3PluginState><IComponent>'
           + juce_b64(component) + "</IComponent><IEditController>0.</IEditController>"
           "</VST3PluginState>").encode()
    return b"VC2!" + len(xml).to_bytes(4, "little") + xml


def session_of_juce_state(state):
    import re
    xml = state[8:].decode()
    comp = juce_unb64(re.search(r"<IComponent>([^<]*)</IComponent>", xml).group(1))
    return json.loads(json.loads(comp)["fields"]["session"])

def run_pedalboard(args):
    import numpy as np
    import pedalboard
    checks = {}
    p = pedalboard.load_plugin(args.bundle)
    checks["loads"] = [True, f"pedalboard {pedalboard.__version__}: instrument={p.is_instrument},"
                             f" effect={p.is_effect}"]
    x = np.sin(np.arange(2 * SR, dtype=np.float32) * 0.01).reshape(1, -1).repeat(2, 0)
    x[1] *= 0.5
    y = p.process(x, SR, buffer_size=512, reset=True)
    same = y.shape == x.shape and float(np.max(np.abs(y - x))) == 0.0
    checks["audio pass-through"] = [same, f"out {y.shape}, max diff {float(np.max(np.abs(y - x))):.3g}"]
    # Load our idea, save it from this instance, reload it into a fresh one: the idea is there.
    p.raw_state = juce_vst3_state(plugin_state(False))
    saved = p.raw_state
    q = pedalboard.load_plugin(args.bundle)
    q.raw_state = saved
    restored = session_of_juce_state(q.raw_state)
    checks["state after save/reload"] = [restored["ideas"][0]["notes"] == NOTES,
                                         f"{len(saved)} bytes, the idea restored"]
    checks["notes out"] = [True, "not observable: pedalboard returns audio only"]
    return checks


def run_dawdreamer(args):
    # DawDreamer 0.9 aborts with an X BadAtom on a bare X server (Xvfb) where no client has made
    # the UTF8_STRING atom yet, even with DISPLAY unset (it tries :0): give it no display at all.
    os.environ["DISPLAY"] = ":99999"
    import numpy as np
    import dawdreamer as daw
    checks = {}
    engine = daw.RenderEngine(SR, 512)
    engine.set_bpm(100.0)
    p = engine.make_plugin_processor("jit", args.bundle)
    ins, outs = p.get_num_input_channels(), p.get_num_output_channels()
    from importlib.metadata import version
    checks["loads"] = [ins == 2 and outs == 2,
                       f"DawDreamer {version('dawdreamer')}: {ins} in / {outs} out"]
    x = np.sin(np.arange(4 * SR, dtype=np.float32) * 0.01).reshape(1, -1).repeat(2, 0)
    x[1] *= 0.5
    src = engine.make_playback_processor("src", x)
    engine.load_graph([(src, []), (p, ["src"])])
    engine.render(4.0)
    y = engine.get_audio()
    n = min(y.shape[1], x.shape[1])
    diff = float(np.max(np.abs(y[:, :n] - x[:, :n])))
    checks["audio pass-through"] = [y.shape[0] == 2 and diff == 0.0,
                                    f"rendered {y.shape}, max diff {diff:.3g}"]
    # Load our idea into it, save its state to a file, load that into a fresh one, save again.
    with tempfile.TemporaryDirectory() as d:
        ours, saved, again = (os.path.join(d, n) for n in ("ours", "saved", "again"))
        with open(ours, "wb") as f:
            f.write(juce_vst3_state(plugin_state(False)))
        p.load_state(ours)
        p.save_state(saved)
        q = engine.make_plugin_processor("jit2", args.bundle)
        q.load_state(saved)
        q.save_state(again)
        with open(again, "rb") as f:
            restored = session_of_juce_state(f.read())
        checks["state after save/reload"] = [restored["ideas"][0]["notes"] == NOTES,
                                             "the idea restored"]
    checks["notes out"] = [True, "not observable: DawDreamer renders audio only"]
    return checks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host", choices=["carla", "carla-editor", "pedalboard", "dawdreamer"])
    ap.add_argument("--format", default="vst3", choices=["clap", "vst3"])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--carla", default="")
    ap.add_argument("--bpm", type=float, default=100.0)
    ap.add_argument("--bars", type=int, default=16)
    args = ap.parse_args()
    args.bundle = os.path.abspath(args.bundle)
    run = {"carla": run_carla, "carla-editor": run_carla_editor, "pedalboard": run_pedalboard,
           "dawdreamer": run_dawdreamer}
    try:
        checks = run[args.host](args)
    except Exception as e:  # a host that cannot load the plugin is a result, not a crash
        checks = {"loads": [False, f"{type(e).__name__}: {e}"]}
    print(json.dumps({"host": args.host, "format": args.format, "checks": checks}), flush=True)
    sys.exit(0 if all(v[0] for v in checks.values()) else 1)


if __name__ == "__main__":
    main()
