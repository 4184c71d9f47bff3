"""structgen on a CUDA device: masks applied to CUDA logits, batched fills into CUDA
bitmasks, and constrained generation with a model on the GPU.

Every test compares against the CPU path or validates the output independently
(json + jsonschema / pydantic), so a wrong device result fails.  Without CUDA the
whole module skips (CI has no GPU); the device check runs it with
``bash .devcheck/run.sh``."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from structgen import (  # noqa: E402  (after the skip: nothing below runs without CUDA)
    apply_token_bitmask_inplace,
    compile_json_schema,
)
from structgen.mask.batch import fill_next_token_bitmask_batch  # noqa: E402
from test_batch_fill import _matchers, _row_by_row  # noqa: E402  (tests/ is on the path: conftest.py)


# --------------------------------------------------------------------------- apply on CUDA
def _random_bitmask(rng: np.random.Generator, rows: int, words: int, density: float) -> np.ndarray:
    bits = rng.random((rows, words * 32)) < density
    return np.packbits(bits, axis=-1, bitorder="little").view(np.int32).reshape(rows, words)


def _reference(logits: torch.Tensor, bitmask: np.ndarray, vocab: int, rows) -> torch.Tensor:
    """Independent of structgen: unpack the bits with numpy, -inf where a bit is clear,
    at or past ``vocab``, or past the bitmask; rows not in ``rows`` untouched."""
    out = logits.clone()
    width = logits.shape[-1]
    bits = np.unpackbits(bitmask.view(np.uint8), axis=-1, bitorder="little").astype(bool)
    allowed = np.zeros((bitmask.shape[0], width), bool)
    n = min(width, bits.shape[1], vocab)
    allowed[:, :n] = bits[:, :n]
    for k, r in enumerate(rows):
        out[r][torch.from_numpy(~allowed[k])] = float("-inf")
    return out


# (logits width, bitmask words, vocab_size=): widths not a multiple of 32, a bitmask wider
# than the logits, a vocab_size below the width (padding ids masked), a real vocab width
CASES = [(1000, 32, None), (257, 9, None), (50257, 1571, None), (151851, 4746, 151_000), (129280, 4040, None),
         (100, 3, None)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("width,words,vocab_size", CASES)
def test_apply_mask_on_cuda_equals_cpu(dtype, width, words, vocab_size):
    dt = getattr(torch, dtype)
    rng = np.random.default_rng(width + words)
    gen = torch.Generator().manual_seed(width)
    batch = 5
    logits = (torch.randn(batch, width, generator=gen) * 4).to(dt)
    for density in (0.02, 0.5, 0.98):
        bm = _random_bitmask(rng, batch, words, density)
        vocab = min(width, 32 * words) if vocab_size is None else vocab_size
        want = _reference(logits, bm, vocab, range(batch))
        cpu = logits.clone()
        apply_token_bitmask_inplace(cpu, torch.from_numpy(bm), vocab_size=vocab_size)
        assert torch.equal(cpu, want)
        for bm_dev in (torch.from_numpy(bm).cuda(), bm):  # CUDA bitmask, or numpy copied over
            got = logits.cuda()
            apply_token_bitmask_inplace(got, bm_dev, vocab_size=vocab_size)
            assert got.device.type == "cuda" and got.dtype == dt
            assert torch.equal(got.cpu(), want), f"density {density}"
        # masked positions are exactly -inf, the others bit-identical to the input
        kept = torch.isfinite(want)
        assert torch.equal(want[kept], logits[kept])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_apply_mask_with_indices_on_cuda(dtype):
    dt = getattr(torch, dtype)
    rng = np.random.default_rng(7)
    width, words = 50000, (50000 + 31) // 32
    logits = torch.randn(6, width, generator=torch.Generator().manual_seed(3)).to(dt)
    rows = [4, 0, 2]
    bm = _random_bitmask(rng, len(rows), words, 0.3)
    want = _reference(logits, bm, width, rows)
    cpu = logits.clone()
    apply_token_bitmask_inplace(cpu, torch.from_numpy(bm), indices=rows)
    assert torch.equal(cpu, want)
    got = logits.cuda()
    apply_token_bitmask_inplace(got, torch.from_numpy(bm).cuda(), indices=rows)
    assert torch.equal(got.cpu(), want)
    for r in (1, 3, 5):  # rows not listed are untouched
        assert torch.equal(got[r].cpu(), logits[r])


def test_apply_mask_1d_on_cuda():
    logits = torch.randn(300, generator=torch.Generator().manual_seed(1))
    bm = _random_bitmask(np.random.default_rng(1), 1, 10, 0.4)
    want = _reference(logits[None], bm, 300, [0])[0]
    got = logits.cuda()
    apply_token_bitmask_inplace(got, torch.from_numpy(bm[0]).cuda())
    assert torch.equal(got.cpu(), want)


# --------------------------------------------------------------------------- batch fill into CUDA
@pytest.fixture(scope="module")
def deepseek_vocab():
    """The deepseek tokenizer (129,280 ids, byte-level BPE) and its Vocabulary."""
    from tokenizers_fixture import deepseek

    from structgen import Vocabulary

    tok = deepseek()
    return tok, Vocabulary.from_tokenizer(tok, vocab_size=len(tok))


@pytest.mark.parametrize("threads", [1, 4])
def test_batch_fill_into_cuda_bitmask_equals_row_by_row(deepseek_vocab, threads):
    _, vocab = deepseek_vocab
    matchers = _matchers(vocab, seed=threads, n=11)  # mixed constraints, each a few random tokens in
    want = _row_by_row(matchers, vocab.size)
    assert not (want == -1).all()  # the masks restrict something (the comparison is not vacuous)

    got = torch.zeros((len(matchers), vocab.num_words), dtype=torch.int32, device="cuda")
    fill_next_token_bitmask_batch(matchers, got, threads=threads)
    assert got.device.type == "cuda"
    assert np.array_equal(got.cpu().numpy(), want)

    # indices into a larger CUDA bitmask: listed rows filled, the others left as they were
    big = torch.full((len(matchers) + 4, vocab.num_words), -1, dtype=torch.int32, device="cuda")
    rows = list(range(len(matchers) + 3, 2, -1))[: len(matchers)]
    fill_next_token_bitmask_batch(matchers, big, threads=threads, indices=rows)
    arr = big.cpu().numpy()
    assert np.array_equal(arr[rows], want)
    assert (arr[[r for r in range(arr.shape[0]) if r not in rows]] == -1).all()

    # a pinned host tensor (what a server copies to the GPU) fills in place, the same
    pinned = torch.zeros((len(matchers), vocab.num_words), dtype=torch.int32).pin_memory()
    fill_next_token_bitmask_batch(matchers, pinned, threads=threads)
    assert np.array_equal(pinned.numpy(), want)
    # and applying the CUDA bitmask on CUDA logits keeps exactly the allowed ids
    logits = torch.randn(len(matchers), vocab.size, device="cuda")
    apply_token_bitmask_inplace(logits, got)
    bits = np.unpackbits(want.view(np.uint8), axis=-1, bitorder="little")[:, : vocab.size].astype(bool)
    assert np.array_equal(torch.isfinite(logits).cpu().numpy(), bits)


# --------------------------------------------------------------------------- generation on CUDA
SCHEMA = {
    "type": "object",
    # every value has a bounded spelling (an integer has not: -0E1234... is the integer 0),
    # so the language is finite and model.generate must end within its token budget
    "properties": {"ok": {"type": "boolean"}, "code": {"type": "string", "pattern": "^[a-z]{1,4}$"},
                   "tag": {"enum": ["red", "green", "blue"]}},
    "required": ["ok", "code", "tag"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def cuda_llama(deepseek_vocab):
    """A seeded 2-layer random Llama over the deepseek vocabulary, on the GPU."""
    import transformers

    tok, _ = deepseek_vocab
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=128, vocab_size=len(tok), initializer_range=0.3,
                                   eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                                   pad_token_id=tok.eos_token_id)
    return transformers.LlamaForCausalLM(cfg).eval().to("cuda")


def _validate(value) -> None:
    import jsonschema

    jsonschema.validate(value, SCHEMA)


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
def test_logits_processor_on_cuda_gives_valid_json(deepseek_vocab, cuda_llama, whitespace):
    from structgen.integrations.transformers import StructgenLogitsProcessor, StructgenStoppingCriteria

    tok, vocab = deepseek_vocab
    model = cuda_llama
    c = compile_json_schema(SCHEMA, vocab, whitespace=whitespace)
    ids = torch.tensor([tok.encode("Answer in JSON:", add_special_tokens=False)] * 2, device="cuda")
    for do_sample in (False, True):
        torch.manual_seed(1)
        proc = StructgenLogitsProcessor([c, c], eos_token_id=tok.eos_token_id)
        # flexible whitespace is bounded (max_whitespace per gap), so 200 tokens always suffice
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), logits_processor=[proc],
                             stopping_criteria=[StructgenStoppingCriteria(proc)], max_new_tokens=200,
                             do_sample=do_sample, temperature=1.0,
                             pad_token_id=tok.eos_token_id)
        assert out.device.type == "cuda"
        for row in out[:, ids.shape[1]:].tolist():
            if tok.eos_token_id in row:
                row = row[: row.index(tok.eos_token_id)]
            m = c.matcher()
            assert m.accept_tokens(row) and m.can_terminate(), tok.decode(row)
            _validate(json.loads(tok.decode(row)))


def test_structgen_generate_on_cuda(deepseek_vocab, cuda_llama):
    import pydantic

    import structgen

    tok, _ = deepseek_vocab

    class Item(pydantic.BaseModel):
        name: str = pydantic.Field(max_length=6)
        count: int

    for seed in (0, 1):
        r = structgen.generate(cuda_llama, tok, "JSON:", schema=SCHEMA, max_new_tokens=40, temperature=1.0,
                               seed=seed, chat=False)
        _validate(r.value)
        assert r.value == json.loads(r.text)
        t = structgen.generate(cuda_llama, tok, "Item:", type=Item, max_new_tokens=40, temperature=1.0,
                               seed=seed, chat=False)
        assert isinstance(t.value, Item) and len(t.value.name) <= 6
        assert Item.model_validate_json(t.text) == t.value
    # greedy is deterministic on the device
    a = structgen.generate(cuda_llama, tok, "JSON:", schema=SCHEMA, max_new_tokens=40, chat=False)
    b = structgen.generate(cuda_llama, tok, "JSON:", schema=SCHEMA, max_new_tokens=40, chat=False)
    assert a.token_ids == b.token_ids
    _validate(a.value)
