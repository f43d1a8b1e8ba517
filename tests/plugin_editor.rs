//! The editor opens in a real X11 window through CLAP's GUI extension (as a host embeds it),
//! draws the current idea while the transport runs, and closes cleanly.
//!
//! Needs an X server; without `DISPLAY` it says so and passes. Under Xvfb, with a screenshot:
//! `JIT_MUSIC_SCREENSHOT=docs/plugin-editor.png xvfb-run -s "-screen 0 1280x900x24" \
//!   cargo test --test plugin_editor -- --nocapture`
//! (the picture is taken with `xwd` and written as PNG here).
#![cfg(all(feature = "plugin", target_os = "linux"))]

use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::EventFlags;
use clack_host::extensions::{
    Extension, ExtensionImplementation, HostExtensionSide, RawExtension, RawExtensionImplementation,
};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use clap_sys::ext::gui::{
    clap_host_gui, clap_plugin_gui, clap_window, clap_window_handle, CLAP_EXT_GUI,
    CLAP_WINDOW_API_X11,
};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::host::clap_host;
use clap_sys::stream::clap_istream;
use std::ffi::{c_void, CStr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

static CALLBACK: AtomicBool = AtomicBool::new(false);

struct Host;
struct Shared;

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        CALLBACK.store(true, Ordering::Release);
    }
}

impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostGui>();
    }
}

/// The host side of CLAP's GUI extension (nice-plug requires the host to offer it).
#[derive(Copy, Clone)]
struct HostGui;

// SAFETY: the identifier is CLAP's GUI extension and the implementation is `clap_host_gui`.
unsafe impl Extension for HostGui {
    const IDENTIFIERS: &'static [&'static CStr] = &[CLAP_EXT_GUI];
    type ExtensionSide = HostExtensionSide;
    unsafe fn from_raw(_raw: RawExtension<HostExtensionSide>) -> Self {
        HostGui
    }
}

unsafe extern "C" fn hints_changed(_h: *const clap_host) {}
unsafe extern "C" fn request_resize(_h: *const clap_host, _w: u32, _hh: u32) -> bool {
    true
}
unsafe extern "C" fn request_show(_h: *const clap_host) -> bool {
    true
}
unsafe extern "C" fn request_hide(_h: *const clap_host) -> bool {
    true
}
unsafe extern "C" fn closed(_h: *const clap_host, _destroyed: bool) {}

static HOST_GUI: clap_host_gui = clap_host_gui {
    resize_hints_changed: Some(hints_changed),
    request_resize: Some(request_resize),
    request_show: Some(request_show),
    request_hide: Some(request_hide),
    closed: Some(closed),
};

// SAFETY: `HOST_GUI` is a `clap_host_gui`, as the identifier promises.
unsafe impl<H: HostHandlers> ExtensionImplementation<H> for HostGui {
    const IMPLEMENTATION: RawExtensionImplementation = RawExtensionImplementation::new(&HOST_GUI);
}

fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("JIT_MUSIC_CLAP") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps");
    [
        deps.join("libjit_music.so"),
        deps.parent().expect("profile").join("libjit_music.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("plugin library")
}

/// A copy of a plugin extension's function table.
fn ext<T: Copy>(instance: &PluginInstance<Host>, id: &CStr) -> T {
    let plugin = instance.raw_instance();
    let get = plugin.get_extension.expect("get_extension");
    // SAFETY: valid plugin and id; the pointer is the extension named by `id`.
    let p = unsafe { get(plugin, id.as_ptr()) } as *const T;
    assert!(!p.is_null(), "missing extension {id:?}");
    // SAFETY: non-null and lives as long as the plugin.
    unsafe { *p }
}

struct Reader(Vec<u8>, usize);

unsafe extern "C" fn read_stream(s: *const clap_istream, buf: *mut c_void, n: u64) -> i64 {
    // SAFETY: ctx is our Reader; buf has room for n bytes.
    let r = unsafe { &mut *((*s).ctx as *mut Reader) };
    let k = (n as usize).min(r.0.len() - r.1);
    unsafe { std::ptr::copy_nonoverlapping(r.0[r.1..].as_ptr(), buf as *mut u8, k) };
    r.1 += k;
    k as i64
}

/// An 8-bar idea from the embedded default model (seed 4242, style "pop" when it has one).
fn generated_idea() -> Option<serde_json::Value> {
    use jit_music::plugin::generate::{generate, GenSettings, Model, Prompt};
    let w = jit_music::default_model::load().ok()?;
    let style = w
        .meta
        .classes
        .iter()
        .position(|c| c.eq_ignore_ascii_case("pop"))
        .map_or(0, |i| i as i32 + 1);
    let model = Model::build(&w, candle_core::Device::Cpu).ok()?;
    let s = GenSettings {
        seed: 4242,
        style,
        ..GenSettings::default()
    };
    let prompt = Prompt {
        current: None,
        captured: &[],
    };
    let mut idea = generate(&model, &s, &prompt, None, &mut |_, _| {}).ok()??;
    // A model early in training gives noise (thousands of notes); show the hand-made idea then.
    if idea.notes.len() > 800 {
        return None;
    }
    idea.id = 1;
    idea.info.style = w
        .meta
        .classes
        .get((style - 1).max(0) as usize)
        .cloned()
        .unwrap_or_default();
    serde_json::to_value(&idea).ok()
}

fn session() -> String {
    let idea = generated_idea().unwrap_or_else(handmade_idea);
    serde_json::json!({"version": 1, "ideas": [idea], "current": 0}).to_string()
}

/// An 8-bar idea to look at without a model: bass, chords and a melody (ticks, PPQ 960).
fn handmade_idea() -> serde_json::Value {
    let mut notes = Vec::new();
    let prog = [[48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50]];
    let melody = [
        72, 74, 76, 79, 77, 76, 74, 72, 71, 72, 74, 76, 74, 72, 71, 67,
    ];
    for bar in 0..8u32 {
        let chord = prog[(bar % 4) as usize];
        let t = bar * 3840;
        notes.push([t, t + 1920, chord[0] - 12, 96]);
        notes.push([t + 1920, t + 3840, chord[0] - 12, 90]);
        for (i, &p) in chord.iter().enumerate() {
            notes.push([t + 960 * i as u32 / 3, t + 3600, p, 70]);
        }
        for k in 0..4u32 {
            let m = melody[((bar * 4 + k) % 16) as usize];
            notes.push([t + k * 960, t + k * 960 + 720, m, 100]);
        }
    }
    serde_json::json!({"id": 1, "bars": 8, "bar_ticks": 3840, "notes": notes,
                       "info": {"mode": "hand-made demo"}})
}

fn load_state(instance: &PluginInstance<Host>) {
    let json = serde_json::to_vec(&serde_json::json!({
        "version": "0.1.0", "params": {}, "fields": {"session": session()}
    }))
    .expect("json");
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    let mut r = Reader(bytes, 0);
    let stream = clap_istream {
        ctx: &mut r as *mut Reader as *mut c_void,
        read: Some(read_stream),
    };
    let st: clap_plugin_state = ext(instance, CLAP_EXT_STATE);
    // SAFETY: valid plugin and stream (main thread).
    assert!(unsafe { st.load.expect("load")(instance.raw_instance(), &stream) });
}

fn transport(sample: u64) -> TransportEvent {
    let beats = sample as f64 / 24_000.0;
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags: TransportFlags::HAS_TEMPO
            | TransportFlags::HAS_BEATS_TIMELINE
            | TransportFlags::HAS_TIME_SIGNATURE
            | TransportFlags::IS_PLAYING,
        song_pos_beats: BeatTime::from_float(beats),
        song_pos_seconds: SecondsTime::from_float(sample as f64 / 48_000.0),
        tempo: 120.0,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(0.0),
        loop_end_beats: BeatTime::from_float(0.0),
        loop_start_seconds: SecondsTime::from_float(0.0),
        loop_end_seconds: SecondsTime::from_float(0.0),
        bar_start: BeatTime::from_float((beats / 4.0).floor() * 4.0),
        bar_number: (beats / 4.0).floor() as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

#[test]
fn editor_opens_in_an_x11_window() {
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("no DISPLAY: skipping the editor test (run it under xvfb-run)");
        return;
    }
    let xlib = x11_dl::xlib::Xlib::open().expect("libX11");
    // SAFETY: plain Xlib calls on a display we open and close here.
    let display = unsafe { (xlib.XOpenDisplay)(std::ptr::null()) };
    assert!(!display.is_null(), "cannot open the X display");

    // SAFETY: our own plugin library.
    let entry = unsafe { PluginEntry::load(plugin_path()) }.expect("entry");
    let factory = entry.get_plugin_factory().expect("factory");
    let id = factory
        .plugin_descriptors()
        .next()
        .expect("plugin")
        .id()
        .expect("id")
        .to_owned();
    let info = HostInfo::new(
        "jit-music editor test",
        "jit-music",
        "https://example.com",
        "0.1",
    )
    .expect("info");
    let mut instance =
        PluginInstance::<Host>::new(|_| Shared, |_| (), &entry, &id, &info).expect("instance");
    load_state(&instance);
    let cfg = PluginAudioConfiguration {
        sample_rate: 48_000.0,
        min_frames_count: 1,
        max_frames_count: 512,
    };
    let mut audio = instance
        .activate(|_, _| (), cfg)
        .expect("activate")
        .start_processing()
        .expect("start");

    let gui: clap_plugin_gui = ext(&instance, CLAP_EXT_GUI);
    let plugin = instance.raw_instance() as *const _;
    let (mut w, mut h) = (0u32, 0u32);
    // SAFETY: CLAP GUI calls on the main thread, in the order the spec asks for.
    unsafe {
        assert!(gui.create.expect("create")(
            plugin,
            CLAP_WINDOW_API_X11.as_ptr(),
            false
        ));
        assert!(gui.get_size.expect("get_size")(plugin, &mut w, &mut h));
    }
    assert!(w >= 400 && h >= 300, "editor size {w}x{h}");
    // SAFETY: Xlib on our display.
    let parent = unsafe {
        let screen = (xlib.XDefaultScreen)(display);
        let root = (xlib.XRootWindow)(display, screen);
        let win = (xlib.XCreateSimpleWindow)(display, root, 0, 0, w, h, 0, 0, 0);
        (xlib.XMapWindow)(display, win);
        (xlib.XFlush)(display);
        win
    };
    let window = clap_window {
        api: CLAP_WINDOW_API_X11.as_ptr(),
        specific: clap_window_handle { x11: parent },
    };
    // SAFETY: as above.
    unsafe {
        assert!(gui.set_parent.expect("set_parent")(plugin, &window));
        assert!(gui.show.expect("show")(plugin));
    }

    // Let it draw while the transport runs (the playhead moves); serve main-thread callbacks.
    let mut sample = 0u64;
    let (ins, mut outs) = (
        // SAFETY: no audio ports.
        unsafe { InputAudioBuffers::from_raw_buffers(&[], 512) },
        unsafe { OutputAudioBuffers::from_raw_buffers(&mut [], 512) },
    );
    let in_events = EventBuffer::new();
    let mut out_events = EventBuffer::with_capacity(1024);
    for _ in 0..300 {
        let t = transport(sample);
        out_events.clear();
        audio
            .process(
                &ins,
                &mut outs,
                &InputEvents::from_buffer(&in_events),
                &mut OutputEvents::from_buffer(&mut out_events),
                Some(sample),
                Some(&t),
            )
            .expect("process");
        sample += 512;
        if CALLBACK.swap(false, Ordering::AcqRel) {
            instance.call_on_main_thread_callback();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    if let Some(path) = std::env::var_os("JIT_MUSIC_SCREENSHOT") {
        let xwd = std::process::Command::new("xwd")
            .args(["-silent", "-id", &parent.to_string()])
            .output()
            .expect("xwd");
        assert!(xwd.status.success(), "xwd failed");
        xwd_to_png(&xwd.stdout, std::path::Path::new(&path));
        eprintln!("screenshot: {}", PathBuf::from(path).display());
    }

    // SAFETY: as above; then the X window goes.
    unsafe {
        gui.hide.expect("hide")(plugin);
        gui.destroy.expect("destroy")(plugin);
        (xlib.XDestroyWindow)(display, parent);
        (xlib.XCloseDisplay)(display);
    }
    instance.deactivate(audio.stop_processing());
}

/// An `xwd` dump (ZPixmap, 24/32 bits per pixel) to a PNG file.
fn xwd_to_png(x: &[u8], path: &std::path::Path) {
    let field = |i: usize| u32::from_be_bytes([x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]]);
    let (header, format, w, h) = (field(0) as usize, field(2), field(4), field(5));
    let (lsb, bpp, stride) = (field(7) == 0, field(11), field(12) as usize);
    let (rm, gm, bm, ncolors) = (field(14), field(15), field(16), field(19) as usize);
    assert!(
        format == 2 && bpp == 32,
        "unexpected xwd format {format}, {bpp} bits"
    );
    let data = &x[header + 12 * ncolors..];
    let channel = |p: u32, m: u32| ((p & m) >> m.trailing_zeros()) as u8;
    let mut img = image::RgbImage::new(w, h);
    for (y, row) in data.chunks(stride).take(h as usize).enumerate() {
        for (xx, px) in row.chunks(4).take(w as usize).enumerate() {
            let b = [px[0], px[1], px[2], px[3]];
            let p = if lsb {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            };
            img.put_pixel(
                xx as u32,
                y as u32,
                image::Rgb([channel(p, rm), channel(p, gm), channel(p, bm)]),
            );
        }
    }
    img.save(path).expect("write png");
}
