"""``torch.compile`` of a whole :class:`SpikingLSTM` on the torch backend gives the eager results (CPU, inductor).

``compile="step"``/``"full"`` (the layer's own option) is tested in ``test_lstm_backends.py``; here the
user compiles the module. Every case traces as one graph, except torch's own LSTM kernel, which runs
eagerly between two graphs (as ``torch.compile`` runs ``nn.LSTM``: see ``snnlstm.backends.ann._lstm``).
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

from snnlstm.nn.lstm import SpikingLSTM

CASES = {
    "ann-standard": (dict(mode="ann", activation="standard"), "torch-native", True),
    "ann-hard": (dict(mode="ann", activation="hard"), "torch-eager", False),
    "snn-pipelined": (dict(mode="snn", schedule="pipelined"), "torch-pipelined", False),
    "snn-fused": (dict(mode="snn", schedule="fused"), "torch-fused", False),
}


def _run(layer: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs, final state, ops and weight gradients of one forward and backward."""
    layer.zero_grad()
    out = layer(x)
    (out.output.square().sum() + out.state.c.sum()).backward()
    grads = {name.removeprefix("_orig_mod."): p.grad.clone() for name, p in layer.named_parameters() if p.grad is not None}
    return {"output": out.output, "h": out.state.h, "c": out.state.c, "ac": out.stats[0].ac, **grads}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_layer_matches_eager(case: str) -> None:
    kwargs, kernel, breaks_at_lstm = CASES[case]
    torch.manual_seed(0)
    layer = SpikingLSTM(3, 4, backend="torch", timesteps=2, **kwargs)
    assert layer.kernel == kernel
    x = torch.rand(2, 3, 3) * 2 - 0.5
    eager = _run(layer, x)
    torch._dynamo.reset()
    reasons = [str(b.reason) for b in torch._dynamo.explain(layer)(x).break_reasons]
    assert bool(reasons) == breaks_at_lstm and all("_lstm" in r for r in reasons), reasons
    torch._dynamo.reset()
    compiled_layer = torch.compile(layer, fullgraph=False)
    compiled = _run(compiled_layer, x)
    assert compiled.keys() == eager.keys() and len(eager) > 4
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], atol=1e-5, rtol=1e-5, msg=f"{case}: {name} differs")
    # the NaN check is traced as a device-side assertion (torch._assert_async): on the CPU it raises at once
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        compiled_layer(torch.full_like(x, float("nan")))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "kwargs",
    [dict(mode="ann", activation="standard"), dict(mode="ann", activation="hard"), dict(mode="snn", schedule="fused"),
     dict(mode="snn", schedule="pipelined"), dict(mode="snn", schedule="sequential"), dict(mode="hybrid", cell="modified")],
    ids=["ann-native", "ann-eager", "snn-fused", "snn-pipelined", "snn-sequential", "hybrid"],
)  # fmt: skip
def test_forward_replays_in_a_cuda_graph(kwargs: dict) -> None:
    """A forward without host synchronisation captures into a CUDA graph; the replay gives the eager result."""
    torch.manual_seed(0)
    layer = SpikingLSTM(3, 4, num_layers=2, backend="torch", timesteps=2, **kwargs).cuda().eval()
    # device lengths (host lengths would be a host-to-device copy in the capture); torch's LSTM kernel packs
    # with host lengths, so it is captured without
    lengths = None if layer.kernel == "torch-native" else torch.tensor([5, 3], device="cuda")
    static_x = torch.rand(2, 5, 3, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(2):  # warm-up on a side stream, as torch.cuda.graphs asks
            layer(static_x, lengths=lengths)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        static_out = layer(static_x, lengths=lengths).output
    new_x = torch.rand(2, 5, 3, device="cuda")
    static_x.copy_(new_x)
    graph.replay()
    with torch.no_grad():
        torch.testing.assert_close(static_out, layer(new_x, lengths=lengths).output)
