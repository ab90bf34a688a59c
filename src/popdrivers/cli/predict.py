"""`popdrivers predict`: predicted popularity with an 80% interval for every track of a dataset, or of a song.

``--data`` scores a track table (Spotify-feature rows with the full model, rows measured from audio with the
model folder's audio model); ``--audio`` analyses audio files first (as `popdrivers analyze` does) and scores
them with the audio model, with what a person can type (followers, genre, release date) given as options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from popdrivers.cli._app import app, console, err_console, read_data, user_errors
from popdrivers.errors import InputError

# Model features a person types (not measured from the sound), the option that gives each, and its label.
_TYPED_INPUTS = (("log_followers", "--followers", "artist followers"), ("genre_family", "--genre", "genre"),
                 ("track_age_days", "--released", "release date"), ("explicit_int", "--explicit", "explicit"))


def report_path(out: Path) -> Path:
    """Where ``predict`` writes what the intervals can promise for the scored table: beside ``--out``."""
    return out.with_name(f"{out.stem}.report.json")


@app.command("predict")
@user_errors
def predict_command(
    model_dir: Path = typer.Option(..., "--model", help="Model folder written by `popdrivers train`."),
    data: Path | None = typer.Option(None, "--data", help="Tracks to score, in any layout popdrivers reads (CSV, "
                                     "Parquet, .xlsx or a crawl folder; a table from `popdrivers analyze` too), with "
                                     "or without a popularity column. A feature the file lacks is predicted as "
                                     "unknown and its interval widened (said in the output)."),
    audio: list[Path] | None = typer.Option(None, "--audio", help="Audio files or folders to analyse and score with "
                                            "the model's audio model (MP3, WAV, FLAC, OGG, M4A); more files may "
                                            "follow it: --audio a.mp3 b.mp3."),
    more_audio: list[Path] | None = typer.Argument(None, metavar="[FILE]...", show_default=False,
                                                   help="More audio files for --audio."),
    followers: int | None = typer.Option(None, "--followers", min=0, help="With --audio: the artist's followers "
                                         "on Spotify (else unknown to the model)."),
    genre: str | None = typer.Option(None, "--genre", help="With --audio: a Spotify genre of the artist, e.g. "
                                     "'dance pop' (else unknown)."),
    released: str | None = typer.Option(None, "--released", help="With --audio: release date, YYYY-MM-DD or YYYY "
                                        "(a future date is an unreleased song; else unknown)."),
    explicit: bool | None = typer.Option(None, "--explicit/--not-explicit", help="With --audio: explicit lyrics "
                                         "(else unknown)."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    out: Path | None = typer.Option(None, "--out", help="CSV to write: track_id (track_name, artist_name, "
                                    "popularity when the data has them; file with --audio), prediction, lower, "
                                    "upper, model (full, or audio for rows whose features were measured from "
                                    "audio), missing_features when some are. Required with --data "
                                    "(OUT.report.json beside it says what the intervals assume); with --audio "
                                    "the table is also printed."),
) -> None:
    """Predict popularity (0-100) with its prediction interval; input is validated like training data."""
    from popdrivers.artifacts import write_json_atomic, write_text_atomic
    from popdrivers.model import load_audio_model, load_model, score_tracks

    files = [*(audio or []), *(more_audio or [])]
    if more_audio and not audio:
        raise InputError(f"unexpected argument {more_audio[0]}: audio files follow --audio")
    if (data is None) == (not files):
        raise InputError("give either --data TABLE or --audio FILE... (not both)")
    if out is not None and out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: use a .csv file name")
    typed = {"--followers": followers, "--genre": genre, "--released": released, "--explicit": explicit}
    if data is not None:
        given = [name for name, value in typed.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only with --audio (a --data table has its own columns)")
        if out is None:
            raise InputError("--out is required with --data: the CSV to write the predictions to")
    model = load_model(model_dir)
    audio_model = load_audio_model(model_dir)
    if data is not None:
        tracks, report = read_data(data, fmt, require_popularity=False)
        predictions, scoring = score_tracks(model, tracks, audio_model)
        write_text_atomic(out, predictions.to_csv(index=False))
        sidecar = report_path(out)
        write_json_atomic(sidecar, {"data": str(data), "model": str(model_dir), **scoring.to_dict()})
        by_audio = int((predictions["model"] == "audio").sum())
        said = f"; {by_audio:,} measured from audio, scored by the audio model" if by_audio else ""
        console.print(f"wrote {len(predictions):,} predictions with {model.interval_level:.0%} intervals to {out} "
                      f"({report.format} layout; {report.summary()}{said})", highlight=False, markup=False)
        for line in scoring.lines():
            console.print(f"- {line}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"what the intervals assume and where this table differs: {sidecar}", highlight=False,
                      markup=False)
        return
    if audio_model is None:
        raise InputError(f"{model_dir}: this model folder has no audio model (audio_model/), so it cannot score "
                         "features measured from a recording; retrain with `popdrivers train` on data that has "
                         "tempo, key, mode or loudness")
    _predict_audio(model, audio_model, files, typed, out)


def _predict_audio(model: Any, audio_model: Any, files: list[Path], typed: dict[str, Any], out: Path | None) -> None:
    """Analyse ``files``, add the typed context, score with the audio model, print (and write) the result."""
    from rich.table import Table

    from popdrivers.artifacts import write_text_atomic
    from popdrivers.audio import analyses_to_table, analyze_each
    from popdrivers.model import scored_table
    from popdrivers.progress import rich_progress

    with rich_progress("analyze", err_console) as progress:
        analyses, failures = analyze_each(files, progress=progress)
    for failure in failures:
        err_console.print(f"not analysed: {failure}", highlight=False, markup=False, soft_wrap=True)
    if not analyses:
        raise InputError("no audio file could be analysed" + ("" if failures else
                                                              f": none found in {', '.join(map(str, files))}"))
    tracks, _report = analyses_to_table(analyses)
    if typed["--followers"] is not None:
        tracks["artist_followers"] = float(typed["--followers"])
    if typed["--genre"] is not None:
        tracks["genre"] = str(typed["--genre"])
    if typed["--released"] is not None:
        tracks["release_date"] = str(typed["--released"])
    if typed["--explicit"] is not None:
        tracks["explicit"] = bool(typed["--explicit"])
    predictions = scored_table(model, tracks, audio_model)
    predictions.insert(1, "file", tracks["file"].astype("string").to_numpy())
    used = set(audio_model.feature_names_)
    unknown = [f"{label} ({option})" for feature, option, label in _TYPED_INPUTS
               if feature in used and typed[option] is None]
    measured = [name for name in audio_model.feature_names_ if name not in {f for f, _, _ in _TYPED_INPUTS}]
    table = Table(title=f"Predicted popularity ({audio_model.interval_level:.0%} interval), audio model")
    for column, justify in (("file", "left"), ("prediction", "right"), ("lower", "right"), ("upper", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in predictions.itertuples(index=False):
        table.add_row(Path(str(row.file)).name, f"{row.prediction:.1f}", f"{row.lower:.1f}", f"{row.upper:.1f}")
    console.print(table)
    from popdrivers.features import feature_label

    console.print("model: the model folder's audio model (trained on what popdrivers measures from a recording "
                  "plus typed context), not the full model of Spotify's features", highlight=False, markup=False)
    console.print(f"measured from the audio: {', '.join(feature_label(m) for m in measured)} (features_source "
                  f"{analyses[0].features_source})", highlight=False, markup=False)
    console.print("unknown to the model: " + (", ".join(unknown) if unknown else "nothing"), highlight=False,
                  markup=False)
    if out is not None:
        write_text_atomic(out, predictions.to_csv(index=False))
        console.print(f"wrote {len(predictions):,} predictions to {out}", highlight=False, markup=False)
