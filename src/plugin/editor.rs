//! The egui editor: the current idea as a piano roll with the playhead and the chord lane above
//! it, Generate and Vary with progress and Cancel, history, the chord field, the parameters,
//! model info, checkpoint loading and .mid export.
//! It reads the audio thread's atomics and the session (never on the audio thread), and sends
//! commands to the worker.

use super::chord_lane::{paint_lane, ChordField, LaneChords};
use super::chords::ChordState;
use super::history::Idea;
use super::params::JitParams;
use super::pattern::PPQ;
use super::shared::{lock, ModelInfo, Shared};
use super::worker::{Command, Worker};
use crate::export::{notes_to_smf, ExportSpec};
use crate::roll::{Grid, RollNote};
use egui::{Color32, CornerRadius, Pos2, Rect, RichText, Sense, Stroke, Vec2};
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp,
};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const WIDTH: f64 = 1040.0;
const HEIGHT: f64 = 870.0;

pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(WIDTH, HEIGHT), 1.0)
}

pub fn create(
    state: Arc<EguiEditorState>,
    params: Arc<JitParams>,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
) -> Option<EguiEditor<App>> {
    let repaint = shared.repaint.clone();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    create_egui_editor(
        state,
        repaint,
        EguiNiceSettings::new().with_tile("JiT-Music"),
        App {
            params,
            shared,
            worker,
            gui: None,
            chord_field: ChordField::default(),
            checkpoint_path: String::new(),
            export_path: home.join("jit-music-idea.mid").display().to_string(),
        },
    )
}

/// The editor's state (text fields) and handles.
pub struct App {
    params: Arc<JitParams>,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
    gui: Option<nice_plug::context::gui::GuiContext>,
    chord_field: ChordField,
    checkpoint_path: String,
    export_path: String,
}

/// What one frame shows of the session (the idea without its stored roll).
struct View {
    index: usize,
    count: usize,
    idea: Option<Idea>,
    checkpoint: Option<String>,
    chords: ChordState,
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: nice_plug::context::gui::GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        self.worker.ensure_started();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let view = self.shared.state.with(|s| View {
            index: s.current,
            count: s.ideas.len(),
            idea: s.current_idea().map(|i| Idea {
                roll: None,
                ..i.clone()
            }),
            checkpoint: s.checkpoint.clone(),
            chords: s.chords.clone(),
        });
        if self.shared.audio.running.load(Ordering::Relaxed)
            || self.shared.worker.busy.load(Ordering::Relaxed)
        {
            ui.ctx().request_repaint();
        }
        egui::Frame::new().inner_margin(8).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.body(ui, &view));
        });
    }
}

fn model_line(m: Option<&ModelInfo>) -> String {
    match m {
        Some(m) => format!(
            "{} ({}, {:.1}M params, {})",
            m.name,
            m.preset,
            m.params as f64 / 1e6,
            m.device
        ),
        None => "no model loaded".into(),
    }
}

impl App {
    fn body(&mut self, ui: &mut egui::Ui, view: &View) {
        ui.horizontal(|ui| {
            ui.heading("JiT-Music");
            ui.label(model_line(lock(&self.shared.worker.model).as_ref()));
        });
        self.transport_row(ui, view);
        let lane = LaneChords::new(&self.params, &self.shared, &view.chords, view.idea.as_ref());
        let takes_chords = lock(&self.shared.worker.model)
            .as_ref()
            .is_none_or(|m| m.chords);
        paint_lane(ui, &lane, takes_chords);
        piano_roll(ui, &self.shared, view.idea.as_ref());
        let msg = self.shared.message();
        if !msg.is_empty() {
            ui.colored_label(Color32::from_rgb(230, 150, 80), msg);
        }
        if let Some(gui) = &self.gui {
            let setter = gui.param_setter();
            self.chord_field.ui(
                ui,
                &self.params,
                &setter,
                &self.shared,
                &self.worker,
                &view.chords,
            );
        }
        ui.separator();
        self.parameters(ui);
        ui.separator();
        self.model_and_files(ui, view);
    }

    fn transport_row(&mut self, ui: &mut egui::Ui, view: &View) {
        let w = &self.shared.worker;
        ui.horizontal(|ui| {
            if w.busy.load(Ordering::Relaxed) {
                if ui.button("Cancel").clicked() {
                    self.worker.cancel();
                }
                let p = w.progress.load(Ordering::Relaxed);
                ui.add(
                    egui::ProgressBar::new(p)
                        .show_percentage()
                        .desired_width(240.0),
                );
            } else {
                let loading = w.loading.load(Ordering::Relaxed);
                let label = if loading {
                    "Loading model..."
                } else {
                    "Generate"
                };
                let button = egui::Button::new(RichText::new(label).strong().size(16.0));
                if ui.add_enabled(!loading, button).clicked() {
                    self.worker.send(Command::Generate);
                }
                let vary = egui::Button::new(RichText::new("Vary").size(16.0));
                if ui
                    .add_enabled(!loading && view.idea.is_some(), vary)
                    .on_hover_text("regenerate the idea partly re-noised (Variation amount)")
                    .clicked()
                {
                    self.worker.send(Command::Vary);
                }
            }
            ui.separator();
            if ui
                .add_enabled(view.index > 0, egui::Button::new("< Previous"))
                .clicked()
            {
                self.shared.state.step(-1);
            }
            let shown = if view.count == 0 { 0 } else { view.index + 1 };
            ui.label(format!("idea {shown} / {}", view.count));
            if ui
                .add_enabled(view.index + 1 < view.count, egui::Button::new("Next >"))
                .clicked()
            {
                self.shared.state.step(1);
            }
            if let Some(idea) = &view.idea {
                ui.separator();
                ui.label(format!(
                    "seed {} | {} | {} | {} notes",
                    idea.info.seed,
                    if idea.info.style.is_empty() {
                        "-"
                    } else {
                        &idea.info.style
                    },
                    if idea.info.role.is_empty() || idea.info.role == "Full" {
                        idea.info.mode.clone()
                    } else {
                        idea.info.role.clone()
                    },
                    idea.notes.len()
                ));
                if ui.button("Keep seed").clicked() {
                    self.keep_seed(idea.info.seed);
                }
                let pending = self.shared.audio.pending_id.load(Ordering::Relaxed);
                if pending != 0 && pending == idea.id {
                    ui.label(RichText::new("starts at the next pattern boundary").italics());
                }
            }
        });
    }

    fn keep_seed(&self, seed: u64) {
        let Some(gui) = &self.gui else {
            return;
        };
        let setter = gui.param_setter();
        let p = &self.params;
        setter.begin_set_parameter(&p.seed);
        setter.set_parameter(&p.seed, seed.min(99_999) as i32);
        setter.end_set_parameter(&p.seed);
        setter.begin_set_parameter(&p.new_seed);
        setter.set_parameter(&p.new_seed, false);
        setter.end_set_parameter(&p.new_seed);
    }

    fn parameters(&self, ui: &mut egui::Ui) {
        let Some(gui) = &self.gui else {
            return;
        };
        let setter = gui.param_setter();
        let p = &self.params;
        let grid = |ui: &mut egui::Ui, id: &str, title: &str, params: &[&dyn ParamRow]| {
            ui.label(RichText::new(title).strong());
            egui::Grid::new(id).num_columns(2).show(ui, |ui| {
                for p in params {
                    p.row(ui, &setter);
                }
            });
        };
        ui.columns(3, |cols| {
            grid(
                &mut cols[0],
                "gen",
                "Generation",
                &[
                    &p.workflow,
                    &p.role,
                    &p.split,
                    &p.bars,
                    &p.style,
                    &p.steps,
                    &p.method,
                    &p.cfg,
                    &p.seed,
                    &p.new_seed,
                    &p.vary_amount,
                ],
            );
            grid(
                &mut cols[1],
                "parts",
                "Parts and timing",
                &[
                    &p.fill_from,
                    &p.fill_to,
                    &p.band_lo,
                    &p.band_hi,
                    &p.live,
                    &p.regen_every,
                    &p.looping,
                    &p.channel,
                ],
            );
            grid(
                &mut cols[2],
                "notes",
                "Notes and input",
                &[
                    &p.threshold,
                    &p.velocity_mode,
                    &p.velocity,
                    &p.transpose,
                    &p.lowest,
                    &p.highest,
                    &p.scale_key,
                    &p.scale,
                    &p.capture,
                    &p.free_run,
                    &p.bypass,
                ],
            );
            if cols[2].button("Clear captured input").clicked() {
                self.worker.send(Command::ClearCapture);
            }
        });
    }

    fn model_and_files(&mut self, ui: &mut egui::Ui, view: &View) {
        let info = lock(&self.shared.worker.model).clone();
        egui::Grid::new("model").num_columns(2).show(ui, |ui| {
            if let Some(m) = &info {
                ui.label("Model");
                ui.label(format!("{} ({})", m.name, m.source));
                ui.end_row();
                ui.label("Preset");
                ui.label(format!(
                    "{}, {} parameters, {}, {} frames, {}; sampler {}",
                    m.preset,
                    m.params,
                    m.grid,
                    m.frames,
                    if m.chords {
                        "follows chords"
                    } else {
                        "no chords"
                    },
                    m.sampler
                ));
                ui.end_row();
                ui.label("Device");
                ui.label(&m.device);
                ui.end_row();
                ui.label("Styles");
                ui.label(if m.classes.is_empty() {
                    "-".to_string()
                } else {
                    m.classes.join(", ")
                });
                ui.end_row();
            }
            ui.label("Last generation");
            let ms = self.shared.worker.last_millis.load(Ordering::Relaxed);
            ui.label(if ms == 0 {
                "-".to_string()
            } else {
                format!("{:.2} s", ms as f64 / 1000.0)
            });
            ui.end_row();
            ui.label("Checkpoint");
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut self.checkpoint_path)
                        .hint_text(
                            view.checkpoint
                                .as_deref()
                                .unwrap_or("path to .safetensors or .pt"),
                        )
                        .desired_width(420.0),
                );
                if ui.button("Load").clicked() && !self.checkpoint_path.trim().is_empty() {
                    let p = PathBuf::from(self.checkpoint_path.trim());
                    self.worker.send(Command::LoadCheckpoint(p));
                }
                if ui.button("Default model").clicked() {
                    self.worker.send(Command::UseDefaultModel);
                }
            });
            ui.end_row();
            ui.label("Export");
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut self.export_path).desired_width(420.0));
                if ui.button("Export .mid").clicked() {
                    let msg = match &view.idea {
                        Some(idea) => self.export(idea),
                        None => "nothing to export yet".into(),
                    };
                    self.shared.set_message(msg);
                }
            });
            ui.end_row();
        });
    }

    /// Write the idea as it plays (transpose, snap, range, channel) to a .mid file.
    fn export(&self, idea: &Idea) -> String {
        let s = self.params.player_settings();
        let notes: Vec<RollNote> = idea
            .pattern_notes()
            .iter()
            .filter_map(|n| {
                s.keymap.map(n.pitch).map(|pitch| RollNote {
                    pitch,
                    start: n.start as usize,
                    end: n.end as usize,
                    velocity: n.velocity,
                })
            })
            .collect();
        let mut spec = ExportSpec::new(Grid::Beats {
            steps_per_beat: PPQ,
        });
        spec.bpm = self.shared.host_timing().0;
        spec.channel = s.channel;
        let bytes = notes_to_smf(&notes, &spec);
        let path = PathBuf::from(self.export_path.trim());
        match std::fs::write(&path, bytes) {
            Ok(()) => format!("exported {} notes to {}", notes.len(), path.display()),
            Err(e) => format!("cannot write {}: {e}", path.display()),
        }
    }
}

/// A parameter as a row of the editor's grids (a label and a slider).
trait ParamRow {
    fn row(&self, ui: &mut egui::Ui, setter: &ParamSetter);
}

impl<P: Param> ParamRow for P {
    fn row(&self, ui: &mut egui::Ui, setter: &ParamSetter) {
        ui.label(self.name());
        ui.add(ParamSlider::for_param(self, setter).with_width(96.0));
        ui.end_row();
    }
}

/// The idea as a piano roll: bars and beats, notes shaded by velocity, the playhead.
fn piano_roll(ui: &mut egui::Ui, shared: &Shared, idea: Option<&Idea>) {
    let size = Vec2::new(ui.available_width().max(200.0), 240.0);
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::same(4), Color32::from_gray(24));
    let Some(idea) = idea else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Press Generate",
            egui::FontId::proportional(18.0),
            Color32::GRAY,
        );
        return;
    };
    let len = idea.len_ticks().max(1) as f32;
    let notes = idea.pattern_notes();
    let (mut lo, mut hi) = notes.iter().fold((127u8, 0u8), |(lo, hi), n| {
        (lo.min(n.pitch), hi.max(n.pitch))
    });
    if lo > hi {
        (lo, hi) = (48, 72);
    }
    let pad = (24u8.saturating_sub(hi - lo)) / 2 + 2;
    let (lo, hi) = (lo.saturating_sub(pad), hi.saturating_add(pad).min(127));
    let rows = f32::from(hi - lo + 1);
    let x = |tick: f32| rect.left() + tick / len * rect.width();
    let y = |pitch: u8| rect.bottom() - (f32::from(pitch - lo) + 1.0) / rows * rect.height();
    // Octave lines, beats and bars.
    for p in lo..=hi {
        if p % 12 == 0 {
            painter.line_segment(
                [
                    Pos2::new(rect.left(), y(p) + rect.height() / rows),
                    Pos2::new(rect.right(), y(p) + rect.height() / rows),
                ],
                Stroke::new(1.0, Color32::from_gray(45)),
            );
        }
    }
    let beats = (len / PPQ as f32).ceil() as u32;
    for b in 0..=beats {
        let t = (b * PPQ) as f32;
        let bar = idea.bar_ticks > 0 && (b * PPQ) % idea.bar_ticks == 0;
        let c = if bar { 90 } else { 40 };
        painter.line_segment(
            [Pos2::new(x(t), rect.top()), Pos2::new(x(t), rect.bottom())],
            Stroke::new(1.0, Color32::from_gray(c)),
        );
    }
    let row_h = (rect.height() / rows).max(2.0);
    for n in &notes {
        let r = Rect::from_min_max(
            Pos2::new(x(n.start as f32), y(n.pitch)),
            Pos2::new(
                x(n.end as f32).max(x(n.start as f32) + 2.0),
                y(n.pitch) + row_h - 1.0,
            ),
        );
        let v = f32::from(n.velocity) / 127.0;
        let c = Color32::from_rgb(
            (80.0 + 150.0 * v) as u8,
            (170.0 + 60.0 * v) as u8,
            (120.0 + 40.0 * (1.0 - v)) as u8,
        );
        painter.rect_filled(r, CornerRadius::same(2), c);
    }
    let audio = &shared.audio;
    if audio.running.load(Ordering::Relaxed) && audio.current_id.load(Ordering::Relaxed) == idea.id
    {
        let px = rect.left() + audio.phase.load(Ordering::Relaxed) * rect.width();
        painter.line_segment(
            [Pos2::new(px, rect.top()), Pos2::new(px, rect.bottom())],
            Stroke::new(2.0, Color32::from_rgb(255, 210, 80)),
        );
    }
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        format!("{} bars", idea.bars),
        egui::FontId::proportional(12.0),
        Color32::from_gray(160),
    );
}
