"""The LLaMA model: paper parameter counts, layout, rotary, norms, and that it can learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.float_tolerance import assert_float32_close
from train.apply import apply_activation_checkpointing
from train.config import PRESETS
from train.model import ModelArgs, RMSNorm, Transformer, apply_rotary, flops_per_token, rope_tables, rotate_pairs_real
from train.parallel import join


@pytest.mark.parametrize("name, billions", [("7b", 6.7), ("13b", 13.0), ("33b", 32.5), ("65b", 65.2)])
def test_paper_presets_have_the_paper_parameter_counts(name: str, billions: float) -> None:
    with torch.device("meta"):
        model = Transformer(PRESETS[name].model)
    count = model.num_params()
    assert abs(count / 1e9 - billions) / billions < 0.01, count


def test_7b_shapes_match_the_reference() -> None:
    args = PRESETS["7b"].model
    assert args.ffn_hidden_dim == 11008
    assert (args.dim, args.n_layers, args.n_heads, args.vocab_size, args.max_seq_len) == (4096, 32, 32, 32000, 2048)
    assert (PRESETS["7b"].lr, PRESETS["33b"].lr, PRESETS["65b"].batch_tokens) == (3e-4, 1.5e-4, 4 * 1024 * 1024)


def test_state_dict_uses_the_reference_llama_names_and_no_biases() -> None:
    model = Transformer(ModelArgs(dim=32, n_layers=2, n_heads=4, vocab_size=50, multiple_of=16, max_seq_len=16))
    names = set(model.state_dict())
    layer = {"attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "attention.wo.weight",
             "feed_forward.w1.weight", "feed_forward.w2.weight", "feed_forward.w3.weight",
             "attention_norm.weight", "ffn_norm.weight"}
    expected = {"tok_embeddings.weight", "norm.weight", "output.weight"} | {
        f"layers.{i}.{name}" for i in range(2) for name in layer}
    assert names == expected  # rotary tables are buffers outside the state dict; untied output
    assert model.output.weight.data_ptr() != model.tok_embeddings.weight.data_ptr()


def test_rotary_matches_meta_complex_reference() -> None:
    head_dim, seq = 16, 9
    cos, sin = rope_tables(head_dim, seq, 10000.0)
    x = torch.randn(2, seq, 3, head_dim)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    freqs_cis = torch.polar(torch.ones(seq, head_dim // 2), torch.outer(torch.arange(seq).float(), freqs))
    x_complex = torch.view_as_complex(x.reshape(2, seq, 3, head_dim // 2, 2))
    reference = torch.view_as_real(x_complex * freqs_cis[None, :, None, :]).flatten(3)
    torch.testing.assert_close(apply_rotary(x, cos, sin), reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotate_pairs_real(x, cos, sin), reference, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_a_compiled_model_takes_the_real_rotation_and_matches_eager() -> None:
    """Inductor cannot generate code for complex products; compiled blocks use the real form."""
    eager = join("fsdp", "cpu").build_model(PRESETS["debug"].model, seed=0)
    compiled = join("fsdp", "cpu").build_model(PRESETS["debug"].model, seed=0, compile=True)
    batch = torch.randint(0, 256, (2, 17), generator=torch.Generator().manual_seed(0))
    losses = [model(batch[:, :-1], batch[:, 1:]) for model in (eager, compiled)]
    for loss in losses:
        loss.backward()
    assert_float32_close(losses[1], losses[0], msg="loss")
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        assert_float32_close(b.grad, a.grad, msg=name)


def test_rmsnorm_computes_in_fp32_for_bf16_inputs() -> None:
    norm = RMSNorm(8, eps=1e-5)
    x = torch.tensor([[1000.0, -1000.0, 3.0, 0.5, 250.0, 7.0, -2.0, 1.0]])
    out = norm(x.bfloat16())
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=0.02, rtol=0.01)


def test_attention_is_causal() -> None:
    torch.manual_seed(0)
    model = Transformer(PRESETS["debug"].model)
    model.init_weights()
    tokens = torch.randint(0, 256, (2, 20))
    changed = tokens.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % 256
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    # The first 12 positions see only unchanged tokens; later ones see the change, far beyond rounding.
    assert_float32_close(after[:, :12], before[:, :12])
    assert (after[:, 12:] - before[:, 12:]).abs().max() > 1e-3 * before.abs().max()


def test_meta_build_then_init_weights_matches_a_direct_build() -> None:
    args = PRESETS["debug"].model
    with torch.device("meta"):
        meta_model = Transformer(args)
    meta_model.to_empty(device="cpu")
    torch.manual_seed(3)
    meta_model.init_weights(buffer_device="cpu")
    direct = Transformer(args)
    torch.manual_seed(3)
    direct.init_weights()
    for (name, a), b in zip(meta_model.state_dict().items(), direct.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(meta_model.rope_cos, direct.rope_cos)
    first_loss = F.cross_entropy(direct(torch.randint(0, 256, (2, 16))).flatten(0, 1), torch.randint(0, 256, (32,)))
    assert abs(first_loss.item() - (torch.log(torch.tensor(256.0)).item() + 0.5)) < 0.6


@pytest.mark.slow
def test_debug_model_overfits_one_repeated_batch_below_0_1() -> None:
    torch.manual_seed(0)
    model = Transformer(PRESETS["debug"].model)
    model.init_weights()
    batch = torch.randint(3, 256, (4, 33))
    inputs, targets = batch[:, :-1], batch[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    for _ in range(150):
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.1


def test_activation_checkpointing_keeps_names_and_gradients() -> None:
    torch.manual_seed(0)
    plain = Transformer(PRESETS["debug"].model)
    plain.init_weights()
    wrapped = Transformer(PRESETS["debug"].model)
    wrapped.load_state_dict(plain.state_dict())
    apply_activation_checkpointing(wrapped)
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    tokens = torch.randint(0, 256, (2, 16))
    for model in (plain, wrapped):
        model(tokens).float().pow(2).mean().backward()
    for (name, a), b in zip(plain.named_parameters(), wrapped.parameters()):
        assert_float32_close(b.grad, a.grad, msg=name)


def test_flops_per_token_is_6n_plus_attention() -> None:
    args = PRESETS["7b"].model
    with torch.device("meta"):
        params = Transformer(args).num_params()
    non_embedding = params - 32000 * 4096
    assert flops_per_token(args, 2048, params) == 6 * non_embedding + 12 * 32 * 4096 * 2048


def test_compile_is_applied_in_place_and_keeps_state_dict_names() -> None:
    from train.apply import apply_compile

    model = Transformer(PRESETS["debug"].model)
    names = list(model.state_dict())
    apply_activation_checkpointing(model)
    apply_compile(model)  # lazy: nothing compiles until the first forward
    assert list(model.state_dict()) == names
