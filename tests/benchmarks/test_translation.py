"""benchmarks/translation.py end to end on a tiny generated corpus (fairseq-prepared layout)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest

from benchmarks.results import read_results
from benchmarks.translation import main
from snnlstm.datamodules import IWSLT14
from snnlstm.models import Translator


def _checkpoint(tmp_path: Path, cell: str) -> tuple[str, str]:
    root = tmp_path / "corpus"
    root.mkdir(exist_ok=True)
    src = ["ein hund .", "zwei hunde .", "ein mann .", "der mann läuft ."]
    tgt = ["a dog .", "two dogs .", "a man .", "the man runs ."]
    for split in ("train", "valid", "test"):
        (root / f"{split}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
        (root / f"{split}.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    data = IWSLT14(data_dir=str(root), cache_dir=str(tmp_path / "cache"), batch_size=4)
    data.setup("fit")
    L.seed_everything(0)
    model = Translator(data.src_vocab_size, data.tgt_vocab_size, embed_dim=8, hidden_size=8, cell=cell, beam_size=2)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    path = str(tmp_path / f"{cell}.ckpt")
    trainer.save_checkpoint(path)
    return path, str(root)


def test_non_spiking_hybrid_and_datta_rows_with_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, root = _checkpoint(tmp_path, "modified")
    baseline, _ = _checkpoint(tmp_path, "baseline")
    out_csv, out_json = tmp_path / "results.csv", tmp_path / "report.json"
    main(["--ckpt", ckpt, "--baseline-ckpt", baseline, "--dataset", "iwslt14", "--data-dir", root, "--timesteps", "4",
          "--datta-timesteps", "2", "3", "--subset", "3", "--samples", "2", "--out-csv", str(out_csv),
          "--out-json", str(out_json)])  # fmt: skip
    main(["--ckpt", ckpt, "--dataset", "iwslt14", "--data-dir", root, "--timesteps", "--datta-timesteps", "--beam", "1",
          "--subset", "3", "--out-csv", str(out_csv), "--out-json", str(tmp_path / "greedy.json")])  # fmt: skip
    rows = read_results(out_csv)
    got = {(r["model"], r["method"], r["timesteps"], r["metric"]) for r in rows}
    assert ("seq2seq8-modified", "ann-beam2-subset3", "1", "bleu") in got and ("seq2seq8-baseline", "ann-beam2-subset3", "1", "bleu") in got
    assert ("seq2seq8-modified", "ann-greedy-subset3", "1", "bleu") in got  # the greedy run did not overwrite the beam row
    for method, t in (("hybrid-beam2-subset3", "4"), ("datta-convert-beam2-subset3", "2"), ("datta-convert-beam2-subset3", "3")):
        assert {("seq2seq8-modified", method, t, m) for m in ("bleu", "energy_ratio", "energy_uj_per_sentence", "firing_rate")} <= got
    energy = {(r["method"], r["timesteps"]): float(r["value"]) for r in rows if r["metric"] == "energy_uj_per_sentence"}
    ratio = {(r["method"], r["timesteps"]): float(r["value"]) for r in rows if r["metric"] == "energy_ratio"}
    ann = energy[("ann-beam2-subset3", "1")]
    assert ann > 0 and energy[("datta-convert-beam2-subset3", "2")] > 0
    assert ratio[("ann-beam2-subset3", "1")] == pytest.approx(1.0)
    assert all(r["task"] == "iwslt14-de-en" for r in rows)
    report = json.loads(out_json.read_text())
    assert len(report["samples"]) == 2
    assert set(report["samples"][0]) == {"source", "reference", "non_spiking", "hybrid_T4", "datta-convert_T3"}
    out = capsys.readouterr().out
    assert "hybrid" in out and "datta-convert" in out


def test_hybrid_rows_need_the_modified_cell(tmp_path: Path) -> None:
    ckpt, root = _checkpoint(tmp_path, "baseline")
    with pytest.raises(SystemExit, match="cell='modified'"):
        main(["--ckpt", ckpt, "--dataset", "iwslt14", "--data-dir", root, "--timesteps", "4", "--out-csv", ""])
    with pytest.raises(SystemExit):
        main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out-csv", ""])
    for bad in (["--beam", "0"], ["--datta-timesteps", "0"]):
        with pytest.raises(SystemExit):
            main(["--ckpt", ckpt, "--dataset", "iwslt14", "--data-dir", root, "--out-csv", "", *bad])
