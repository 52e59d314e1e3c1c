"""Translator, Seq2Seq and the searches on a tiny generated parallel corpus (word-for-word cipher)."""

from __future__ import annotations

import random
from pathlib import Path

import lightning as L
import pytest
import torch

from snnlstm.datamodules import ParallelText
from snnlstm.models import Translator
from snnlstm.models.seq2seq import Seq2Seq
from snnlstm.models.search import beam_search, greedy_search

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
CIPHER = {w: w[::-1] + "x" for w in WORDS}  # the "translation" of every word


def _corpus(root: Path, n: int = 48, seed: int = 0) -> Path:
    """Prepared layout (already tokenised): target = cipher of the source words, 2 to 5 words."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        src.append(" ".join(words))
        tgt.append(" ".join(CIPHER[w] for w in words))
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (root / f"{split}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
        (root / f"{split}.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return root


def _data(tmp_path: Path, **kwargs: object) -> ParallelText:
    return ParallelText(data_dir=str(_corpus(tmp_path / "corpus")), cache_dir=str(tmp_path / "cache"), batch_size=16, **kwargs)


def _net(seed: int = 0, **kwargs: object) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(12, 12, embed_dim=8, hidden_size=8, dropout=0.0, **kwargs).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.tensor([[5, 6, 7, 2], [8, 9, 2, 0], [4, 2, 0, 0]])
    return src, src.ne(0)


@pytest.mark.parametrize("cell", ["baseline", "modified", "lstm"])
def test_beam_of_one_is_greedy(cell: str) -> None:
    net = _net(cell=cell)
    src, mask = _batch()
    assert beam_search(net, src, mask, beam_size=1, max_len=7) == greedy_search(net, src, mask, max_len=7)


@pytest.mark.parametrize("timesteps", [1, 3], ids=["T1", "T3"])
def test_beam_of_one_is_greedy_in_snn_mode(timesteps: int) -> None:
    """Datta-style spiking encoder/decoder: the per-step state ([L, T, B, H]) is reordered and
    repeated along its batch dimension by the beam bookkeeping."""
    net = _net(cell="modified", mode="snn", timesteps=timesteps).double()
    src, mask = _batch()
    enc = net.encode(src, mask)
    assert enc.h.shape == (1, timesteps, 3, 8)  # the per-step state leaves the encoder
    assert beam_search(net, src, mask, beam_size=1, max_len=7) == greedy_search(net, src, mask, max_len=7)


@pytest.mark.parametrize("search", ["greedy", "beam"])
@pytest.mark.parametrize("mode", ["ann", "snn"])
def test_padding_does_not_change_translations(search: str, mode: str) -> None:
    net = _net(1) if mode == "ann" else _net(1, cell="modified", mode="snn", timesteps=3).double()
    src, mask = _batch()
    run = (lambda s, m: greedy_search(net, s, m, 6)) if search == "greedy" else (lambda s, m: beam_search(net, s, m, 3, 6))
    together = run(src, mask)
    for b in range(3):
        n = int(mask[b].sum())
        assert run(src[b : b + 1, :n], mask[b : b + 1, :n]) == [together[b]]


def test_beam_search_finds_a_hypothesis_at_least_as_probable_as_greedy() -> None:
    net = _net(2)
    src, mask = _batch()

    def logprob(b: int, ids: list[int]) -> float:
        tgt_in = torch.tensor([[1] + ids])
        out = torch.tensor([ids + [2]])
        logp = torch.log_softmax(net(src[b : b + 1], mask[b : b + 1], tgt_in), dim=-1)
        return float(logp.gather(2, out.unsqueeze(2)).sum())

    greedy = greedy_search(net, src, mask, 6)
    beam = beam_search(net, src, mask, 4, 6, length_penalty=0.0)  # raw log-probability
    for b in range(3):
        assert logprob(b, beam[b]) >= logprob(b, greedy[b]) - 1e-5


@pytest.mark.slow
def test_translator_overfits_a_tiny_corpus_and_reports_bleu(tmp_path: Path) -> None:
    dm = _data(tmp_path)
    dm.setup("fit")
    L.seed_everything(0)
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=32, hidden_size=32, dropout=0.0, optimizer="adam", lr=0.02, beam_size=2)
    trainer = L.Trainer(max_epochs=40, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=5.0, check_val_every_n_epoch=40)
    trainer.fit(model, datamodule=dm)
    assert trainer.callback_metrics["val/bleu"] > 90
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert result["test/bleu"] > 90
    assert model.test_translations[:3] == dm.references("test")[:3]
    predictions = trainer.predict(model, datamodule=dm)
    assert sum(len(p) for p in predictions) == 48
    # the same checkpoint at test time as Ponghiran & Roy's hybrid cell needs their modified cell
    model.hparams.eval_mode = "hybrid"
    with pytest.raises(ValueError, match="cell='modified'"):
        trainer.test(model, datamodule=dm, verbose=False)


def test_hybrid_evaluation_of_a_modified_cell_translator(tmp_path: Path) -> None:
    dm = _data(tmp_path, test_subset=5)
    dm.setup("test")
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=8, hidden_size=8, cell="modified", beam_size=2, eval_mode="hybrid", eval_timesteps=4)
    from snnlstm.callbacks import SpikeMonitor

    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[SpikeMonitor(stages=["test"])])
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert 0.0 <= result["test/bleu"] <= 100.0
    assert result["test/energy_ratio"] > 0 and 0 < result["test/firing_rate"] < 1  # the hybrid gates spiked
    assert len(model.test_translations) == 5  # BLEU over the seeded test subset
    assert {layer.mode for layer in model.lstm_layers()} == {"ann"}  # restored after the test


def test_snn_evaluation_of_a_modified_cell_translator(tmp_path: Path) -> None:
    """Datta et al.'s conversion at test time: both LSTMs spike, energy and rates are reported, the
    layers go back to ANN mode afterwards; predict uses the same switch."""
    from snnlstm.callbacks import SpikeMonitor

    dm = _data(tmp_path, test_subset=5)
    dm.setup("test")
    torch.manual_seed(0)
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=8, hidden_size=8, cell="modified", beam_size=2, eval_mode="snn", eval_timesteps=4)
    seen: list[tuple[str, int]] = []
    model.net.decoder.register_forward_pre_hook(lambda m, args: seen.append((m.mode, m.timesteps)))
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[SpikeMonitor(stages=["test"])])
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert set(seen) == {("snn", 4)}
    assert 0.0 <= result["test/bleu"] <= 100.0
    assert result["test/energy_ratio"] > 0 and 0 < result["test/firing_rate"] < 1
    assert {layer.mode for layer in model.lstm_layers()} == {"ann"}
    seen.clear()
    trainer.predict(model, datamodule=dm)
    assert set(seen) == {("snn", 4)} and model.net.encoder.mode == "ann"


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(optimizer="lbfgs"), "optimizer"), (dict(eval_mode="spiking"), "eval_mode.*hybrid, snn"), (dict(beam_size=0), "beam_size")],
    ids=["optimizer", "eval_mode", "beam"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Translator(**kwargs)


def test_tied_embeddings_need_equal_widths() -> None:
    with pytest.raises(ValueError, match="tie_embeddings"):
        Seq2Seq(10, 10, embed_dim=8, hidden_size=16, tie_embeddings=True)
    net = Seq2Seq(10, 10, embed_dim=8, hidden_size=8, tie_embeddings=True)
    assert net.project.weight is net.tgt_embed.weight


@pytest.mark.slow
def test_cli_fit_test_predict_with_the_checkpoints_vocabulary(tmp_path: Path) -> None:
    """``snnlstm fit`` on the translation config, ``test --ckpt_path`` after the corpus's vocabulary
    changed (the checkpoint's is used), ``predict`` from a file through :class:`TranslationWriter`."""
    from snnlstm.cli import cli_main

    root = _corpus(tmp_path / "corpus")
    common = [
        "--config", str(Path(__file__).parents[2] / "configs" / "multi30k_translation.yaml"),
        "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.callbacks", "null",
        "--data", "snnlstm.datamodules.ParallelText", "--data.data_dir", str(root), "--data.cache_dir", str(tmp_path / "cache"),
        "--data.batch_size", "16",
    ]  # fmt: skip
    model = ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_size", "16", "--model.init_args.beam_size", "2"]
    fit = cli_main(["fit", *common, *model, "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "1"])
    assert fit.model.hparams.src_vocab_size == fit.datamodule.src_vocab_size == 4 + len(WORDS)  # linked
    ckpt = str(tmp_path / "model.ckpt")
    fit.trainer.save_checkpoint(ckpt)
    (root / "train.de").write_text("new words only\n" * 48, encoding="utf-8")  # a different vocabulary now
    test = cli_main(["test", *common, "--ckpt_path", ckpt])
    assert test.datamodule.codec.to_json() == fit.datamodule.codec.to_json()
    assert 0.0 <= test.trainer.callback_metrics["test/bleu"] <= 100.0
    (tmp_path / "in.txt").write_text("alpha beta\ngamma\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    cli_main(["predict", *common, "--ckpt_path", ckpt, "--data.predict_file", str(tmp_path / "in.txt"),
              "--trainer.callbacks+=snnlstm.callbacks.TranslationWriter", f"--trainer.callbacks.output={out}"])  # fmt: skip
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.parametrize("cell", ["modified", "baseline"], ids=["hard-thresholds", "calibrated"])
def test_conversion_callback_fine_tunes_a_translator_as_a_spiking_lstm(tmp_path: Path, cell: str) -> None:
    """Datta et al.'s school mid-training: the same ANNToSNNConversion callback as for the classifiers
    converts both LSTMs (a standard-activation cell after calibrating its thresholds), the thresholds
    and leaks join the optimizer, and the teacher-forced SNN training and decoding run."""
    from snnlstm.callbacks import ANNToSNNConversion

    dm = _data(tmp_path)
    dm.setup("fit")
    L.seed_everything(0)
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=8, hidden_size=8, cell=cell, optimizer="adam", lr=0.01, beam_size=2)
    conversion = ANNToSNNConversion(epoch=1, timesteps=2, calibration_batches=2)
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1, callbacks=[conversion])
    before = model.net.decoder.neurons[0].f.threshold.detach().clone()
    trainer.fit(model, datamodule=dm)
    assert conversion.converted and {layer.mode for layer in model.lstm_layers()} == {"snn"}
    assert not torch.equal(model.net.decoder.neurons[0].f.threshold.detach(), before)  # thresholds were trained
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert 0.0 <= result["test/bleu"] <= 100.0


def test_hybrid_conversion_callback_switches_a_translator_at_test_time(tmp_path: Path) -> None:
    """Ponghiran & Roy's school through the same callback: with no epoch or step it converts both
    LSTMs to hybrid cells when test starts, as their reference does."""
    from snnlstm.callbacks import ANNToSNNConversion

    dm = _data(tmp_path, test_subset=4)
    dm.setup("test")
    torch.manual_seed(0)
    model = Translator(dm.src_vocab_size, dm.tgt_vocab_size, embed_dim=8, hidden_size=8, cell="modified", beam_size=1)
    conversion = ANNToSNNConversion(epoch=None, method="hybrid", timesteps=4)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[conversion])
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert conversion.converted and {(layer.mode, layer.timesteps) for layer in model.lstm_layers()} == {("hybrid", 4)}
    assert 0.0 <= result["test/bleu"] <= 100.0
