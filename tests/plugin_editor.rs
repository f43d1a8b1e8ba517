//! The editor opens in a real X11 window through CLAP's GUI extension (as a host embeds it),
//! draws the current idea under the chord lane (a typed progression), repaints the moving
//! playhead while the transport runs with no input event at all (no pointer or key), and closes
//! cleanly; then opens again twice on the same instance, once closed after the host has already
//! destroyed its window (X errors are logged, nothing crashes).
//!
//! Needs an X server: without `DISPLAY` it starts its own Xvfb (and fails, saying so, where Xvfb
//! is not installed). Locally, with a screenshot:
//! `JIT_MUSIC_SCREENSHOT=docs/plugin-editor.png xvfb-run -s "-screen 0 1280x1024x24" \
//!   cargo test --test plugin_editor -- --nocapture`
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
    use jit_music::generate::Generator;
    use jit_music::plugin::generate::{generate, GenSettings, Sources};
    let w = jit_music::default_model::load().ok()?;
    let style = w
        .meta
        .classes
        .iter()
        .position(|c| c.eq_ignore_ascii_case("pop"))
        .map_or(0, |i| i as i32 + 1);
    let model = Generator::new(w.clone(), candle_core::Device::Cpu).ok()?;
    let s = GenSettings {
        seed: 4242,
        style,
        ..GenSettings::default()
    };
    let sources = Sources {
        current: None,
        captured: &[],
    };
    let mut idea = generate(&model, &s, &sources, None, &mut |_, _| {}).ok()??;
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

/// The idea, and a typed progression for the chord lane (the default model takes no chords
/// yet, so the lane shows them as the next idea's, with a note saying so).
fn session() -> String {
    let idea = generated_idea().unwrap_or_else(handmade_idea);
    serde_json::json!({"version": 1, "ideas": [idea], "current": 0,
                       "chords": {"text": "C | Am | F | G"}})
    .to_string()
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
        "version": "0.1.0", "params": {"chords": {"string": "typed"}},
        "fields": {"session": session()}
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

/// The host's transport at `sample` of the song, playing or stopped there.
fn transport(sample: u64, playing: bool) -> TransportEvent {
    let beats = sample as f64 / 24_000.0;
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
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

/// Starts Xvfb for this test when no X display is set. `-terminate` ends it when its last
/// client disconnects, i.e. when this process exits: killing it earlier would make Xlib end the
/// process from the plugin's still-connected window thread.
fn start_virtual_display_if_needed() {
    if std::env::var_os("DISPLAY").is_some() {
        return;
    }
    // -displayfd 1: Xvfb picks a free display number and prints it once it accepts connections.
    let mut child = std::process::Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-terminate",
            "-screen",
            "0",
            "1280x1024x24",
        ])
        .args(["-nolisten", "tcp"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("no DISPLAY and no Xvfb: install xvfb (apt install xvfb) or run under an X server");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("Xvfb stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("Xvfb display number");
    let n: u32 = line
        .trim()
        .parse()
        .expect("Xvfb printed its display number");
    std::env::set_var("DISPLAY", format!(":{n}"));
    // Reaped when it ends (after this process's last X connection closes).
    std::thread::spawn(move || child.wait());
}

#[test]
fn editor_opens_in_an_x11_window() {
    start_virtual_display_if_needed();
    let xlib = x11_dl::xlib::Xlib::open().expect("libX11");
    // SAFETY: plain Xlib calls on a display we open and close here.
    let display = unsafe { (xlib.XOpenDisplay)(std::ptr::null()) };
    assert!(!display.is_null(), "cannot open the X display");
    // The pointer goes to the far corner, outside the editor: no enter or motion events.
    // SAFETY: Xlib on our display.
    unsafe {
        let root = (xlib.XDefaultRootWindow)(display);
        let screen = (xlib.XDefaultScreenOfDisplay)(display);
        let (sw, sh) = ((*screen).width, (*screen).height);
        (xlib.XWarpPointer)(display, 0, root, 0, 0, 0, 0, sw - 1, sh - 1);
        (xlib.XSync)(display, 0);
    }

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
    let (parent, w, h) = open_editor(&xlib, display, &gui, plugin);
    // The first frame can take seconds in a debug build on a busy machine: wait for it before
    // the host starts, so that what follows sees repaints, not start-up.
    wait_for_first_frame(&mut instance, &xlib, display, parent, w, h);

    // The host stops for 100 blocks (the editor settles and stops asking for frames), then plays
    // for 300 (the playhead moves); main-thread callbacks are served. Every 20 blocks of play the
    // window's pixels are read back: the picture must change, with no input event sent to the
    // window. (Before the audio thread asked for repaints, it stayed as it was when play began.)
    let mut frames: Vec<u64> = Vec::new();
    let mut first: Option<image::RgbImage> = None;
    let mut sample = 0u64;
    let mut block = 0u32;
    // Stereo in and out: the plugin's first (default) layout.
    let (mut ports_in, mut ports_out) = (
        AudioPorts::with_capacity(2, 1),
        AudioPorts::with_capacity(2, 1),
    );
    let mut audio_in = [vec![0f32; 512], vec![0f32; 512]];
    let mut audio_out = [vec![0f32; 512], vec![0f32; 512]];
    let in_events = EventBuffer::new();
    let mut out_events = EventBuffer::with_capacity(1024);
    while block < 400 {
        let playing = block >= 100;
        let t = transport(sample, playing);
        out_events.clear();
        let ins = ports_in.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                audio_in.iter_mut().map(InputChannel::variable),
            ),
        }]);
        let mut outs = ports_out.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                audio_out.iter_mut().map(|b| b.as_mut_slice()),
            ),
        }]);
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
        block += 1;
        if playing {
            sample += 512;
        }
        if CALLBACK.swap(false, Ordering::AcqRel) {
            instance.call_on_main_thread_callback();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        if playing && block % 20 == 0 {
            let img = grab(&xlib, display, parent, w, h);
            let hash = pixel_hash(&img);
            if frames.last() != Some(&hash) {
                frames.push(hash);
            }
            first.get_or_insert(img);
        }
    }
    let first = first.expect("no frame read back");
    let colours = colour_count(&first);
    assert!(colours > 8, "the editor drew nothing ({colours} colours)");
    assert!(
        frames.len() >= 3,
        "the playhead did not move without input events ({} distinct frames)",
        frames.len()
    );

    if let Some(path) = std::env::var_os("JIT_MUSIC_SCREENSHOT") {
        grab(&xlib, display, parent, w, h)
            .save(&path)
            .expect("write png");
        eprintln!("screenshot: {}", PathBuf::from(path).display());
    }

    close_editor(&xlib, display, &gui, plugin, parent, false);

    // Hosts close and reopen editors all the time: a second window on the same instance draws
    // too (closing joins the first window's thread, see vendor/README.md). This time the host
    // destroys its window before the editor, as Bitwig does (pugl PR 130).
    let (parent, w, h) = open_editor(&xlib, display, &gui, plugin);
    wait_for_first_frame(&mut instance, &xlib, display, parent, w, h);
    close_editor(&xlib, display, &gui, plugin, parent, true);

    // And a third time: the editor still opens and draws after that.
    let (parent, w, h) = open_editor(&xlib, display, &gui, plugin);
    wait_for_first_frame(&mut instance, &xlib, display, parent, w, h);
    close_editor(&xlib, display, &gui, plugin, parent, false);

    // SAFETY: Xlib on our display.
    unsafe { (xlib.XCloseDisplay)(display) };
    instance.deactivate(audio.stop_processing());
}

/// Creates the editor in a new top-level X window (as a host embeds it) and shows it; returns
/// that window and the editor's size.
fn open_editor(
    xlib: &x11_dl::xlib::Xlib,
    display: *mut x11_dl::xlib::Display,
    gui: &clap_plugin_gui,
    plugin: *const clap_sys::plugin::clap_plugin,
) -> (u64, u32, u32) {
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
        // XSync, not XFlush: the editor reparents from its own X connection, so the server must
        // have made this window before set_parent (a rare BadWindow otherwise).
        (xlib.XSync)(display, 0);
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
    (parent, w, h)
}

/// Waits (up to a minute) until the editor has drawn something, serving main-thread callbacks.
fn wait_for_first_frame(
    instance: &mut PluginInstance<Host>,
    xlib: &x11_dl::xlib::Xlib,
    display: *mut x11_dl::xlib::Display,
    parent: u64,
    w: u32,
    h: u32,
) {
    for _ in 0..600 {
        if CALLBACK.swap(false, Ordering::AcqRel) {
            instance.call_on_main_thread_callback();
        }
        if colour_count(&grab(xlib, display, parent, w, h)) > 8 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the editor drew nothing within a minute");
}

/// Hides and destroys the editor and destroys its host window: after the editor, or before it
/// (`parent_first`, as some hosts do).
fn close_editor(
    xlib: &x11_dl::xlib::Xlib,
    display: *mut x11_dl::xlib::Display,
    gui: &clap_plugin_gui,
    plugin: *const clap_sys::plugin::clap_plugin,
    parent: u64,
    parent_first: bool,
) {
    // SAFETY: Xlib on our display and window; CLAP GUI calls on the main thread.
    unsafe {
        if parent_first {
            (xlib.XDestroyWindow)(display, parent);
            (xlib.XSync)(display, 0);
        }
        gui.hide.expect("hide")(plugin);
        gui.destroy.expect("destroy")(plugin);
        if !parent_first {
            (xlib.XDestroyWindow)(display, parent);
            (xlib.XSync)(display, 0);
        }
    }
}

fn colour_count(img: &image::RgbImage) -> usize {
    img.pixels()
        .map(|p| p.0)
        .collect::<std::collections::HashSet<[u8; 3]>>()
        .len()
}

/// The window's pixels as the X server has them (children included), read with XGetImage.
fn grab(
    xlib: &x11_dl::xlib::Xlib,
    display: *mut x11_dl::xlib::Display,
    win: u64,
    w: u32,
    h: u32,
) -> image::RgbImage {
    // SAFETY: Xlib on our display and window; the image is freed before returning.
    unsafe {
        (xlib.XSync)(display, 0);
        let img = (xlib.XGetImage)(display, win, 0, 0, w, h, !0, x11_dl::xlib::ZPixmap);
        assert!(!img.is_null(), "XGetImage failed");
        let im = &*img;
        assert_eq!(im.bits_per_pixel, 32, "unexpected visual");
        let data = std::slice::from_raw_parts(
            im.data as *const u8,
            (im.bytes_per_line * im.height) as usize,
        );
        let channel = |p: u32, m: u64| ((u64::from(p) & m) >> m.trailing_zeros()) as u8;
        let mut out = image::RgbImage::new(w, h);
        for (y, row) in data
            .chunks(im.bytes_per_line as usize)
            .take(h as usize)
            .enumerate()
        {
            for (x, px) in row.chunks(4).take(w as usize).enumerate() {
                let b = [px[0], px[1], px[2], px[3]];
                let p = if im.byte_order == x11_dl::xlib::LSBFirst {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                };
                let rgb = [
                    channel(p, im.red_mask),
                    channel(p, im.green_mask),
                    channel(p, im.blue_mask),
                ];
                out.put_pixel(x as u32, y as u32, image::Rgb(rgb));
            }
        }
        (xlib.XDestroyImage)(img);
        out
    }
}

fn pixel_hash(img: &image::RgbImage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    img.as_raw().hash(&mut h);
    h.finish()
}
