"""structgen's own generation loop: ``generate(model, tokenizer, prompt, regex=... | grammar=... | schema=... | type=...)``.

A plain KV-cached loop over a ``transformers`` causal LM (``DynamicCache``),
with everything constrained decoding needs that ``model.generate`` cannot do:

The decoding loop (batches, fast-forward, budget-safe closing) is
:mod:`structgen.integrations.loop`; sampling functions live in
:mod:`structgen.sampling`.  Every prompt's constraint state is one ``Matcher``.

**Prompt healing** (``heal_prompt=True``).  The last prompt tokens (up to 3,
never the whole prompt) whose bytes ``h`` are a proper prefix of some vocabulary
token are removed from the prompt, and ``h`` becomes the matcher's required
prefix (with no constraint: ``(?s).*``), so the model may re-tokenise across
the seam (``http:`` + ``//`` -> ``http`` + ``://``).  ``h`` is reported in
``GenerationResult.healed`` and excluded from ``text``.  Prompts wrapped in a
chat template are not healed: their end is the template's, not the user's.

**Streaming.**  ``stream=callable`` is called with each text delta (``fn(delta)``
for one prompt, ``fn(index, delta)`` for a list); ``stream=True`` returns a
:class:`GenerationStream`: iterate it for the deltas (``str``, or
``(index, str)`` for a list), then read ``.result`` / ``.results``.  Deltas are
whole UTF-8 characters and concatenate to ``text``.

Sampling: ``temperature=0`` is greedy; otherwise mask, then temperature, top-k
(``0``: off), top-p (``1.0``: off), in that order (as ``model.generate`` does),
drawn with a ``numpy`` generator seeded by ``seed``.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

from ..api.types import normalize_schema
from ..compiler import default_compiler
from ..errors import ConfigurationError
from ..mask.engine import CompiledGrammar
from ..sampling.warpers import TokenSampler
from ..vocab import Vocabulary
from .loop import Sequence as _Sequence
from ..sampling.drafts import DRAFT_SOURCES, GrammarDrafts, PromptLookupDrafts
from .drafters import DraftModel, layerskip_model
from .loop import Drafting, run
from .samplers import check_sampler_options, sample_exact
from .loop import heal_prompt as heal_prompt_ids
from .transformers import encode_bytes, vocabulary_for

__all__ = ["generate", "GenerationResult", "GenerationStream", "resolve_constraint"]


@dataclass
class GenerationResult:
    """One generated output.

    ``text``: the generated text (healed prompt bytes excluded); ``token_ids``:
    generated ids (EOS excluded); ``value``: the parsed JSON (``schema=``), the
    validated Python object (``type=``), else None; ``error``: why ``value``
    could not be produced; ``forced_tokens``: tokens that came from
    fast-forward or accepted drafts; ``closed_by_budget``: the output was steered to its shortest
    completion because ``max_new_tokens`` was running out; ``finish_reason``:
    ``"eos"``, ``"complete"`` (nothing may follow), ``"budget"`` (closed by
    budget), ``"length"`` (unconstrained and out of tokens), ``"time"`` (``max_time``)."""

    text: str
    token_ids: list[int]
    value: Any = None
    forced_tokens: int = 0
    closed_by_budget: bool = False
    finish_reason: str = ""
    prompt: str = ""
    healed: str = ""
    error: str | None = None
    stats: dict = field(default_factory=dict)
    log_weight: float | None = None
    particles: list | None = None
    log_weights: list | None = None
    log_ml: float | None = None

    def __str__(self) -> str:
        return self.text


# --- constraints -----------------------------------------------------------------

def _compile_schema(vocab: Vocabulary, schema: dict, options: dict | None) -> CompiledGrammar:
    return default_compiler(vocab).compile_json_schema(schema, **dict(options or {}))


def resolve_constraint(vocab: Vocabulary, *, schema=None, regex=None, grammar=None, type=None,
                       json_options: dict | None = None):
    """``(compiled or None, parse)``: ``parse(text) -> value`` (raises on invalid output) or None.
    ``json_options``: keyword options of ``compile_json_schema`` (``whitespace="compact"`` ...)."""
    given = [n for n, v in (("schema", schema), ("regex", regex), ("grammar", grammar), ("type", type))
             if v is not None]
    if len(given) > 1:
        raise ConfigurationError(f"pass at most one of schema=, regex=, grammar=, type= (got {', '.join(given)})")
    from .. import list_grammars, load_grammar

    compiler = default_compiler(vocab)  # memoises constraints: a repeated call compiles nothing
    if regex is not None:
        if isinstance(regex, CompiledGrammar):
            return regex, None
        return compiler.compile_regex(regex), None
    if grammar is not None:
        if isinstance(grammar, CompiledGrammar):
            return grammar, None
        text = load_grammar(grammar) if grammar in list_grammars() else grammar
        return compiler.compile_grammar(text), None
    if schema is not None:
        if isinstance(schema, CompiledGrammar):
            return schema, json.loads
        model_cls = schema if isinstance(schema, builtins.type) and hasattr(schema, "model_validate_json") else None
        s = normalize_schema(schema)
        c = _compile_schema(vocab, s, json_options)
        return c, (model_cls.model_validate_json if model_cls is not None else json.loads)
    if type is not None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(type)
        s = normalize_schema(adapter.json_schema())
        return _compile_schema(vocab, s, json_options), adapter.validate_json
    return None, None


# --- the front door ----------------------------------------------------------------------

def generate(model, tokenizer, prompt: str | Sequence[str] | Sequence[dict], *, schema=None, regex=None,
             grammar=None, type=None, max_new_tokens: int = 256, temperature: float = 0.0,
             top_p: float = 1.0, top_k: int = 0, seed: int | None = None, stream=None,
             heal_prompt: bool = False, chat: bool = True, system: str | None = None,
             fast_forward: str | bool = "verify", budget_safe: bool = True,
             json_options: dict | None = None, max_time: float | None = None,
             draft: str | Sequence[str] | None = None, draft_model=None, layerskip_layers: int | None = None,
             sampler: str = "masked", particles: int = 4, ess_threshold: float = 0.5,
             resampling: str = "systematic", critic: Callable[[Any], float] | None = None, asap=None):
    """Generate constrained text with a ``transformers`` causal LM.

    ``prompt``: a string (one result), a list of strings (a batch: a list of
    results), or a list of chat messages (``{"role", "content"}`` dicts: one
    result).  Constraint (at most one): ``regex=`` (pattern), ``grammar=`` (Lark
    or GBNF text, or a shipped grammar name), ``schema=`` (JSON Schema as a dict,
    JSON text or a pydantic model class; needs ``structgen.json_schema``),
    ``type=`` (any type pydantic's ``TypeAdapter`` handles; ``.value`` is the
    validated object), or a ``CompiledGrammar`` in ``regex=``/``grammar=``.
    None of them: unconstrained.

    ``chat``: wrap string prompts in the tokenizer's chat template (when it has
    one; ``system``: an optional system message).  ``heal_prompt``: see the module
    docstring.  ``fast_forward``: ``"verify"`` | ``"inject"`` | ``False``.
    ``budget_safe=False`` turns budget-safe closing off (outputs may then be cut
    short by ``max_new_tokens``).  ``json_options``: options of
    ``compile_json_schema`` for ``schema=``/``type=`` (e.g. ``{"whitespace": "compact"}``).
    ``max_time``: seconds; generation stops once it is exceeded (checked before each
    forward pass; ``finish_reason`` ``"time"``, the output may be incomplete).

    ``draft``: speculative draft sources, combinable (``"grammar"``: forced
    continuations; ``"prompt"``: n-gram lookup in the prompt, the schema's literals
    and the output; ``"model"``: ``draft_model=``, a smaller causal LM sharing the
    tokenizer; ``"layerskip"``: the target's own first ``layerskip_layers`` layers).
    Every draft is verified exactly: the output distribution is that of masked
    decoding (greedy: identical outputs).  Default: ``["grammar", "prompt"]`` when
    ``fast_forward="verify"``.  ``GenerationResult.stats`` counts target and draft
    forward passes, proposed/accepted drafts per source and mask time.

    ``sampler``: ``"masked"`` (default: mask, warp, draw; fastest, but renormalising
    each step distorts the model's distribution towards prefixes with little valid
    future), ``"awrs"`` (exact token-level draws with a weight: ``log_weight``),
    ``"smc"`` (``particles`` weighted AWRS particles, ``ess_threshold``,
    ``resampling``; ``particles``/``log_weights``/``log_ml`` on the result; ``critic``:
    a log-potential on the parsed value, e.g. a validator for keywords the mask
    cannot express) or ``"asap"`` (grammar-aligned: pass a
    :class:`~structgen.sampling.ASAp` as ``asap=`` to reuse what it learnt across
    calls).  See :mod:`structgen.integrations.samplers`.

    Returns :class:`GenerationResult` (or a list), or a :class:`GenerationStream`
    with ``stream=True``."""
    if fast_forward not in ("verify", "inject", False, None):
        raise ConfigurationError(f"fast_forward must be 'verify', 'inject' or False, got {fast_forward!r}")
    if max_new_tokens < 1:
        raise ConfigurationError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ConfigurationError(f"seed must be None or an int >= 0, got {seed!r}")
    check_sampler_options(sampler, temperature=temperature, top_k=top_k, top_p=top_p, draft=draft, stream=stream,
                          particles=particles, asap=asap)
    single = isinstance(prompt, str) or (isinstance(prompt, (list, tuple)) and prompt
                                          and isinstance(prompt[0], dict))
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        raise ConfigurationError("no prompts given")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    vocab = vocabulary_for(tokenizer, vocab_size)
    compiled, parse = resolve_constraint(vocab, schema=schema, regex=regex, grammar=grammar, type=type,
                                         json_options=json_options)
    if compiled is not None and compiled.vocab.size != vocab.size:
        raise ConfigurationError(
            f"the constraint was compiled for a vocabulary of {compiled.vocab.size} tokens, "
            f"the model has {vocab.size}")
    eos = set(vocab.eos_ids)
    for src in (getattr(tokenizer, "eos_token_id", None),
                getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(src, int):
            eos.add(src)
        elif isinstance(src, (list, tuple)):
            eos.update(int(e) for e in src)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = min(eos) if eos else 0

    if heal_prompt and compiled is None:  # healing needs a constraint to prefix: "anything"
        compiled = default_compiler(vocab).compile_regex("(?s).*")
    encode = partial(encode_bytes, tokenizer, vocab)  # canonical spelling of forced/closing bytes
    sources = _draft_sources(draft, fast_forward)
    drafting = Drafting(grammar=GrammarDrafts(encode) if "grammar" in sources and compiled is not None else None,
                        prompt="prompt" in sources,
                        draft_model=_draft_model(model, sources, draft_model, layerskip_layers))
    literals = [encode(lit) for lit in _schema_literals(schema, type)] if "prompt" in sources else []
    eos = frozenset(eos)
    rows = []
    for i, p in enumerate(prompts):
        text = p
        templated = False
        if chat and getattr(tokenizer, "chat_template", None):
            from ..models import apply_chat_template

            text = apply_chat_template(tokenizer, p, system=system)
            templated = True
        elif not isinstance(p, str):
            from ..models import apply_chat_template

            text = apply_chat_template(tokenizer, p, system=system)
        ids = list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
        heal = b""
        if heal_prompt and not templated and len(ids) > 1:
            ids, heal = heal_prompt_ids(vocab, ids, max_tokens=min(3, len(ids) - 1))
        if not ids:
            raise ConfigurationError(f"prompt {i} is empty after tokenisation")
        matcher = None if compiled is None else compiled.matcher(prefix=heal, eos_ids=eos)
        lookup = PromptLookupDrafts(ids, literals) if "prompt" in sources else None
        rows.append(_Sequence(i, text, ids, matcher, vocab, encode, max_new_tokens, eos, healed=heal,
                              budget_safe=budget_safe, lookup=lookup))

    for r in rows:
        m = r.matcher
        if m is None:
            continue
        if budget_safe and not m.fits(max_new_tokens, encode):
            tail = m.completion_bytes()
            what = "the constraint accepts no output (none found within the search limit)" if tail is None else \
                f"the shortest valid output, {tail!r}, takes {len(m.completion_tokens(None, encode) or ())} tokens"
            raise ConfigurationError(f"max_new_tokens={max_new_tokens} cannot hold a valid output: {what}")
        if m.must_terminate():
            r.finish_with("complete")  # the empty output is the only one

    if sampler != "masked":
        if compiled is None:
            raise ConfigurationError(f"sampler={sampler!r} needs a constraint (schema=, regex=, grammar= or type=)")
        out = []
        for r in rows:
            log_critic = None if critic is None else _critic_on_values(critic, parse, vocab)
            got = sample_exact(model, sampler, r.pending, r.matcher, max_new_tokens=max_new_tokens,
                               temperature=temperature, seed=None if seed is None else seed + r.index, eos_ids=eos,
                               particles=particles, ess_threshold=ess_threshold, resampling=resampling,
                               critic=log_critic, asap=asap)
            for t in got["tokens"]:
                r._append(t, forced=False)
            r.finish_with(got["finish"])
            res = _result(r, parse)
            res.stats, res.log_weight, res.log_ml = got["stats"], got["log_weight"], got["log_ml"]
            res.particles, res.log_weights = got["particles"], got["log_weights"]
            out.append(res)
        return out[0] if single else out

    sampler = TokenSampler(temperature, top_k, top_p, seed)
    deadline = None if max_time is None else time.perf_counter() + max_time
    events = run(model, rows, sampler, fast_forward or False, pad_id, deadline, drafting)

    def results():
        out = [_result(r, parse) for r in rows]
        return out[0] if single else out

    if stream is True:
        return GenerationStream(events, results, single)
    if stream is not None:
        for i, d in events:
            stream(d) if single else stream(i, d)
    else:
        for _ in events:
            pass
    return results()


def _critic_on_values(critic, parse, vocab: Vocabulary):
    """SMC's critic on token ids, from the user's critic on parsed values (an output
    that does not parse gets weight 0)."""
    def on_tokens(ids) -> float:
        text = vocab.decode(ids).decode("utf-8", "replace")
        try:
            value = parse(text) if parse is not None else text
        except ValueError:  # json.JSONDecodeError and pydantic's ValidationError are ValueErrors
            return float("-inf")
        return float(critic(value))

    return on_tokens


def _draft_sources(draft, fast_forward) -> list[str]:
    if draft is None:
        return ["grammar", "prompt"] if fast_forward == "verify" else []  # exact, and cheap when unused
    sources = [draft] if isinstance(draft, str) else list(draft)
    unknown = [x for x in sources if x not in DRAFT_SOURCES]
    if unknown:
        raise ConfigurationError(f"unknown draft source(s) {unknown}: choose from {list(DRAFT_SOURCES)}")
    if "model" in sources and "layerskip" in sources:
        raise ConfigurationError("draft= takes one of 'model' and 'layerskip', not both")
    return sources


def _draft_model(model, sources: list[str], draft_model, layers: int | None) -> DraftModel | None:
    if "model" in sources:
        if draft_model is None:
            raise ConfigurationError("draft='model' needs draft_model= (a causal LM sharing the tokenizer)")
        return DraftModel(draft_model, "model")
    if draft_model is not None:
        raise ConfigurationError("draft_model= is only used with draft='model'")
    if "layerskip" in sources:
        return DraftModel(layerskip_model(model, layers), "layerskip")
    return None


def _schema_literals(schema, type_) -> list[bytes]:
    """Property names, enum and const strings of a JSON Schema, as JSON text: the
    literals prompt-lookup drafts may copy."""
    from pydantic import TypeAdapter

    if (schema is None and type_ is None) or isinstance(schema, CompiledGrammar):
        return []
    s = normalize_schema(TypeAdapter(type_).json_schema() if type_ is not None else schema)
    found: set[str] = set()

    def walk(x):
        if isinstance(x, dict):
            found.update(k for k in (x.get("properties") or {}) if isinstance(k, str))
            for v in ([x["const"]] if "const" in x else []) + list(x.get("enum") or []):
                if isinstance(v, str):
                    found.add(v)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(s)
    return [json.dumps(v, ensure_ascii=False).encode() for v in sorted(found)]


def _result(r: _Sequence, parse) -> GenerationResult:
    text = r.text()
    value, error = None, None
    if parse is not None:
        try:
            value = parse(text)
        except Exception as e:  # noqa: BLE001 - reported on the result
            error = f"{type(e).__name__}: {e}"
    return GenerationResult(text=text, token_ids=list(r.out_ids), value=value, forced_tokens=r.forced,
                            closed_by_budget=r.closed_by_budget, finish_reason=r.finish,
                            prompt=r.prompt_text, healed=r.healed.decode("utf-8", "replace"), error=error,
                            stats=r.stats)


class GenerationStream:
    """Iterator over text deltas (``str``, or ``(index, str)`` for a batch); after it
    is exhausted, ``.result`` (one prompt) / ``.results`` (a batch) hold the outputs.
    Reading ``.result(s)`` early runs the generation to the end."""

    def __init__(self, events, results, single: bool):
        self._events, self._results, self._single = events, results, single
        self._value = None

    def __iter__(self):
        for i, d in self._events:
            yield d if self._single else (i, d)
        self._value = self._results()

    def _finish(self):
        if self._value is None:
            for _ in self:
                pass
        return self._value

    @property
    def result(self) -> GenerationResult:
        return self._finish()

    @property
    def results(self) -> list[GenerationResult]:
        v = self._finish()
        return [v] if self._single else v
