//! The editor's chord lane and chord field: the chords in use per bar above the piano roll
//! (the playing idea's, and the ones the next idea will follow when they differ), and a row to
//! pick where chords come from, type a progression (parse errors shown as you type), take the
//! chords of the idea or the captured input, or forget the followed ones.

use super::chords::{lane_labels, next_chords, progression, ChordState};
use super::history::Idea;
use super::params::{ChordSource, JitParams};
use super::shared::Shared;
use super::worker::{Command, Worker};
use crate::chords::ChordTrack;
use egui::{Color32, CornerRadius, Pos2, Rect, RichText, Sense, Stroke, Vec2};
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use std::sync::atomic::Ordering;

const ROW: f32 = 20.0;

/// The chords one frame shows, as they sound.
pub struct LaneChords {
    /// The playing idea's chords (transposed to sound).
    pub idea: Option<ChordTrack>,
    /// What the next idea follows (`Err`: the progression cannot be read).
    pub next: Result<Option<ChordTrack>, String>,
    /// Ticks the lane spans and of one bar (the idea's, else the next pattern's).
    pub len: u32,
    pub bar: u32,
}

impl LaneChords {
    pub fn new(
        params: &JitParams,
        shared: &Shared,
        chords: &ChordState,
        idea: Option<&Idea>,
    ) -> Self {
        let (_, num, den) = shared.host_timing();
        let bars = idea.map_or(params.bars.value().count(), |i| i.bars);
        let next = next_chords(params.chords.value(), chords, bars, (num, den));
        let transpose = params.transpose.value();
        let bar = idea.map_or(super::pattern::bar_ticks(num, den), |i| i.bar_ticks);
        Self {
            idea: idea.and_then(|i| i.chords.as_ref().map(|c| c.transpose(transpose))),
            next,
            len: bars.max(1) * bar.max(1),
            bar: bar.max(1),
        }
    }
}

/// The lane: one row of chord boxes per bar for the idea, a second one for the next chords
/// when they differ; the same width and bars as the piano roll below it.
pub fn paint_lane(ui: &mut egui::Ui, lane: &LaneChords, takes_chords: bool) {
    let next = lane.next.as_ref().ok().and_then(Option::as_ref);
    let two = lane.idea.is_some() && next.is_some() && lane.idea.as_ref() != next;
    let h = if two { 2.0 * ROW + 2.0 } else { ROW + 2.0 };
    let size = Vec2::new(ui.available_width().max(200.0), h);
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::same(3), Color32::from_gray(30));
    let len = lane.len.max(1) as f32;
    let x = |t: usize| rect.left() + (t as f32 / len).min(1.0) * rect.width();
    let font = egui::FontId::proportional(12.0);
    let row = |track: &ChordTrack, top: f32, fill: Color32, text: Color32| {
        for (start, end, name) in lane_labels(track) {
            if start >= lane.len as usize {
                continue;
            }
            let r = Rect::from_min_max(
                Pos2::new(x(start) + 1.0, top + 1.0),
                Pos2::new(x(end) - 1.0, top + ROW - 1.0),
            );
            painter.rect_filled(r, CornerRadius::same(2), fill);
            painter.with_clip_rect(r).text(
                r.left_center() + Vec2::new(4.0, 0.0),
                egui::Align2::LEFT_CENTER,
                name,
                font.clone(),
                text,
            );
        }
    };
    let top = rect.top() + 1.0;
    match (&lane.idea, next) {
        (Some(idea), _) => {
            row(idea, top, Color32::from_rgb(70, 90, 150), Color32::WHITE);
            if two {
                if let Some(n) = next {
                    row(
                        n,
                        top + ROW,
                        Color32::from_gray(55),
                        Color32::from_gray(200),
                    );
                }
            }
        }
        (None, Some(n)) => row(n, top, Color32::from_gray(55), Color32::from_gray(200)),
        (None, None) => {
            painter.text(
                rect.left_center() + Vec2::new(6.0, 0.0),
                egui::Align2::LEFT_CENTER,
                "no chords: type a progression below, or follow the chords played in",
                font.clone(),
                Color32::from_gray(120),
            );
        }
    }
    let bars = lane.len / lane.bar;
    for b in 1..bars {
        let px = x((b * lane.bar) as usize);
        painter.line_segment(
            [Pos2::new(px, rect.top()), Pos2::new(px, rect.bottom())],
            Stroke::new(1.0, Color32::from_gray(90)),
        );
    }
    let mut tags = Vec::new();
    if two {
        tags.push("lower row: the next idea's chords");
    }
    if !takes_chords && (lane.idea.is_some() || next.is_some()) {
        tags.push("this model takes no chords");
    }
    if !tags.is_empty() {
        let galley = painter.layout_no_wrap(
            tags.join("; "),
            egui::FontId::proportional(11.0),
            Color32::from_rgb(230, 190, 120),
        );
        let at = rect.right_top() + Vec2::new(-6.0 - galley.size().x, 3.0);
        painter.rect_filled(
            Rect::from_min_size(
                at - Vec2::new(4.0, 1.0),
                galley.size() + Vec2::new(8.0, 2.0),
            ),
            CornerRadius::same(2),
            Color32::from_gray(30),
        );
        painter.galley(at, galley, Color32::from_rgb(230, 190, 120));
    }
}

/// The chord field's text and what the parser said of it.
#[derive(Default)]
pub struct ChordField {
    buffer: String,
    /// The session's progression when last copied into `buffer`.
    seen: String,
    error: Option<String>,
}

impl ChordField {
    /// The row under the roll: source, progression, From idea, Clear followed; errors below.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        params: &JitParams,
        setter: &ParamSetter,
        shared: &Shared,
        worker: &Worker,
        state: &ChordState,
    ) {
        if state.text != self.seen {
            self.seen = state.text.clone();
            self.buffer = state.text.clone();
            self.error = None;
        }
        let (_, num, den) = shared.host_timing();
        let bars = params.bars.value().count();
        let use_typed = |setter: &ParamSetter| {
            setter.begin_set_parameter(&params.chords);
            setter.set_parameter(&params.chords, ChordSource::Typed);
            setter.end_set_parameter(&params.chords);
        };
        ui.horizontal(|ui| {
            ui.label(RichText::new("Chords").strong());
            ui.add(ParamSlider::for_param(&params.chords, setter).with_width(110.0));
            let edit = ui.add(
                egui::TextEdit::singleline(&mut self.buffer)
                    .hint_text("C | G | Am F | F")
                    .desired_width(300.0),
            );
            if edit.changed() {
                self.error = if self.buffer.trim().is_empty() {
                    None
                } else {
                    progression(&self.buffer, bars, (num, den)).err()
                };
            }
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let ok = self.error.is_none();
            if (ui.add_enabled(ok, egui::Button::new("Set")).clicked() || (enter && ok))
                && self.buffer != state.text
            {
                let text = self.buffer.trim().to_string();
                shared.state.with(|s| s.chords.text = text.clone());
                self.seen = text;
                use_typed(setter);
                shared.flags.chords_changed.store(true, Ordering::Release);
            }
            if ui
                .button("From idea")
                .on_hover_text("the chords of the captured input (when capturing) or the idea")
                .clicked()
            {
                use_typed(setter);
                worker.send(Command::ChordsFromIdea);
            }
            let followed = !state.followed.is_empty();
            if ui
                .add_enabled(followed, egui::Button::new("Clear followed"))
                .clicked()
            {
                worker.send(Command::ClearFollowed);
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(Color32::from_rgb(240, 110, 90), e);
        }
    }
}
