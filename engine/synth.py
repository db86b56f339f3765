"""A reproducible generator of a synthetic corpus in the AESW 2016 XML format.

Longer than most modules because it is one grammar: word lists (data), then the phrase and
sentence builders that use them, then the edit injection; splitting it would scatter one idea.

Real AESW data cannot be redistributed, so the project ships a synthetic stand-in that exercises the
same code paths: sentences of scientific prose with AESW placeholders (``_MATH_``, ``_CITE_`` ...)
and editor changes marked with ``<del>`` and ``<ins>``.

How a sentence is made, and why:

1. A *virtual edit kind* is drawn first, for every sentence, edited or not.
2. A clean sentence is built from a small grammar until that kind can be applied to it.
3. Only then is it decided whether the sentence is edited (about 55 %).  If it is, an error is
   injected into the text *before* editing, and the markup shows the editor removing it.

Drawing the kind before the label means the clean sentences are filtered exactly like the edited
ones, so length, template and placeholder use carry no information about the label: the only
signal is the injected error (extra comma, doubled word, misspelling, missing article ...).

Everything is driven by one ``random.Random(seed)``, so the same ``(n, seed)`` gives the same bytes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from engine.errors import EditlensError
from engine.outputs import output_file

__all__ = ["generate_sentences", "write_aesw"]

# Share of sentences that carry an edit, and the edit kinds among them (see module docstring).
_EDITED_SHARE = 0.55
_KINDS = ("deleted", "spelling", "inserted", "mixed")
_KIND_WEIGHTS = (40, 20, 15, 25)
# Share of sentences built as long run-ons (over 60 words) so that truncation paths get exercised.
_LONG_SHARE = 0.035
# Share of sentences made of two clauses (the 25-45 word range).
_COMPOUND_SHARE = 0.2
_PARAGRAPH_SIZES = (1, 2, 3, 4, 5, 6, 7)
_PARAGRAPH_WEIGHTS = (8, 14, 20, 20, 16, 12, 10)


class _Tok(NamedTuple):
    """One token of a clean sentence, with what an error injector may do to it.

    role: "art" (droppable article), "comma" (droppable comma), "prep" (droppable preposition),
    "rel" (restrictive "that"), "agree" (verb with a wrong-number form) or "".
    alt: the wrong word a replacement edit puts in its place ("" when none).
    slot: "comma"/"colon" (an extra one after this token is an error), "noart" (an extra "the"
    before this token is an error) or "".
    """

    text: str
    space: bool = True
    role: str = ""
    alt: str = ""
    slot: str = ""


_PUNCT = frozenset({",", ".", ";", ":", ")", "?"})
_MARK = re.compile(r"^(.+?)(?:~([a-z])(?:=(.+))?)?(?:\^([a-z]))?$")
_ROLE = {"a": "art", "i": "comma", "p": "prep", "r": "rel", "g": "agree"}
_SLOT = {"c": "comma", "k": "colon", "n": "noart"}


@cache
def _t(phrase: str) -> tuple[_Tok, ...]:
    """Parse a template phrase; markers (``the~a``, ``on~p=of``, ``show^c``) give roles and slots.

    Parsed phrases are cached and their tokens shared: tokens are immutable, and parsing on every
    use would dominate the generation time.  Phrases are fixed strings from this module, so the
    cache stays small whatever the number of sentences.
    """
    toks: list[_Tok] = []
    for raw in phrase.split():
        m = _MARK.match(raw)
        assert m is not None, raw
        text, role, alt, slot = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        toks.append(
            _Tok(
                text.replace("_SP_", " "),
                text not in _PUNCT,
                _ROLE[role] if role else "",
                alt.replace("_SP_", " "),
                _SLOT[slot] if slot else "",
            )
        )
    return tuple(toks)


# --------------------------------------------------------------------------------------------
# Vocabulary.  Nouns are (singular, plural); a domain is chosen per paragraph for coherence.


def _plural(noun: str) -> str:
    """English plural of the last word, enough for this vocabulary."""
    head, _, last = noun.rpartition(" ")
    irregular = {
        "analysis": "analyses",
        "matrix": "matrices",
        "hypothesis": "hypotheses",
        "basis": "bases",
        "vertex": "vertices",
        "spectrum": "spectra",
        "data": "data",
        "phenomenon": "phenomena",
        "index": "indices",
        "criterion": "criteria",
    }
    if last in irregular:
        out = irregular[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        out = last + "es"
    elif last.endswith("y") and last[-2] not in "aeiou":
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


_DOMAIN_NOUNS: dict[str, tuple[str, ...]] = {
    "physics": (
        "energy spectrum",
        "temperature",
        "magnetic field",
        "electron",
        "phonon",
        "lattice",
        "Hamiltonian",
        "wave function",
        "spin",
        "particle",
        "cross section",
        "potential",
        "density",
        "velocity",
        "scattering amplitude",
        "coupling constant",
        "ground state",
        "phase transition",
        "order parameter",
        "correlation function",
        "detector",
        "sample",
        "excitation",
        "resonance",
        "boundary condition",
        "perturbation",
        "oscillator",
    ),
    "cs": (
        "algorithm",
        "network",
        "classifier",
        "dataset",
        "graph",
        "kernel",
        "loss function",
        "gradient",
        "neural network",
        "training set",
        "baseline",
        "encoder",
        "query",
        "matrix",
        "estimator",
        "feature",
        "benchmark",
        "architecture",
        "heuristic",
        "protocol",
        "node",
        "embedding",
        "objective function",
        "search space",
        "test set",
        "implementation",
    ),
    "biology": (
        "protein",
        "cell",
        "gene",
        "enzyme",
        "mutation",
        "receptor",
        "population",
        "tissue",
        "cell line",
        "expression level",
        "pathway",
        "sequence",
        "species",
        "strain",
        "organism",
        "antibody",
        "membrane",
        "concentration",
        "genome",
        "phenotype",
        "tumor",
        "culture",
        "treatment",
        "patient",
        "control group",
        "transcript",
    ),
    "math": (
        "operator",
        "function",
        "solution",
        "manifold",
        "subspace",
        "eigenvalue",
        "inequality",
        "bound",
        "sequence",
        "theorem",
        "lemma",
        "norm",
        "domain",
        "estimate",
        "coefficient",
        "polynomial",
        "integral",
        "series",
        "coordinate",
        "constraint",
        "vector",
        "mapping",
        "measure",
        "equation",
        "approximation",
        "condition",
    ),
}
_GENERAL_NOUNS = (
    "method",
    "approach",
    "result",
    "analysis",
    "simulation",
    "experiment",
    "measurement",
    "parameter",
    "error",
    "distribution",
    "model",
    "framework",
    "technique",
    "procedure",
    "assumption",
    "observation",
    "effect",
    "scheme",
    "contribution",
    "variable",
    "quantity",
    "property",
    "structure",
    "system",
    "limit",
    "regime",
    "configuration",
    "hypothesis",
    "criterion",
    "strategy",
)
_NOUNS = {
    dom: tuple((n, _plural(n)) for n in nouns + _GENERAL_NOUNS)
    for dom, nouns in _DOMAIN_NOUNS.items()
}
_DOMAINS = tuple(_DOMAIN_NOUNS)

_ADJECTIVES = (
    "proposed",
    "standard",
    "simple",
    "non-linear",
    "large-scale",
    "two-dimensional",
    "time-dependent",
    "well-known",
    "effective",
    "numerical",
    "experimental",
    "theoretical",
    "stochastic",
    "optimal",
    "local",
    "global",
    "small",
    "significant",
    "robust",
    "efficient",
    "accurate",
    "high-dimensional",
    "self-consistent",
    "non-zero",
    "non-negative",
    "multi-scale",
    "finite",
    "discrete",
    "continuous",
    "statistical",
    "linear",
    "external",
    "initial",
    "average",
    "total",
    "relative",
    "corresponding",
    "non-trivial",
    "independent",
    "consistent",
    "typical",
    "underlying",
    "asymmetric",
    "different",
    "previous",
    "additional",
    "separate",
    "unknown",
    "relevant",
    "dominant",
    "weighted",
    "symmetric",
    "characteristic",
    "fundamental",
)
_PARTICIPLES = (
    "computed",
    "obtained",
    "measured",
    "estimated",
    "derived",
    "observed",
    "evaluated",
    "implemented",
    "used",
    "proposed",
    "studied",
    "reported",
    "performed",
    "determined",
    "analyzed",
    "trained",
    "validated",
    "calculated",
    "considered",
    "compared",
    "discussed",
    "investigated",
    "introduced",
    "described",
    "simulated",
    "optimized",
    "normalized",
)
_INFINITIVES = (
    "compute",
    "estimate",
    "obtain",
    "determine",
    "evaluate",
    "approximate",
    "reduce",
    "characterize",
    "describe",
    "measure",
    "quantify",
    "improve",
    "analyze",
    "identify",
    "separate",
    "simulate",
    "predict",
    "reconstruct",
    "minimize",
    "control",
)
# (third person singular, plural, droppable/replaceable preposition marker or "").
_TRANSITIVE = (
    ("yields", "yield", ""),
    ("reduces", "reduce", ""),
    ("improves", "improve", ""),
    ("exhibits", "exhibit", ""),
    ("describes", "describe", ""),
    ("captures", "capture", ""),
    ("outperforms", "outperform", ""),
    ("requires", "require", ""),
    ("provides", "provide", ""),
    ("determines", "determine", ""),
    ("affects", "affect", ""),
    ("satisfies", "satisfy", ""),
    ("enhances", "enhance", ""),
    ("predicts", "predict", ""),
    ("controls", "control", ""),
    ("depends", "depend", "on~p=of"),
    ("leads", "lead", "to~p"),
    ("consists", "consist", "of~p=in"),
    ("converges", "converge", "to~p"),
    ("corresponds", "correspond", "to~p"),
    ("agrees", "agree", "with~p"),
    ("relies", "rely", "on~p=in"),
    ("belongs", "belong", "to~p"),
    ("contributes", "contribute", "to~p"),
    ("differs", "differ", "from~p=than"),
)
_PREDICATES = (
    "consistent with~p",
    "proportional to~p",
    "independent of~p=from",
    "comparable to~p",
    "similar to~p",
    "equivalent to~p",
    "sensitive to~p",
    "different from~p=than",
    "related to~p",
    "responsible for~p",
    "necessary for~p",
    "essential for~p",
    "based on~p=in",
    "in good agreement with~p",
)
_SHOW_VERBS = (
    "show",
    "find",
    "observe",
    "note",
    "argue",
    "prove",
    "demonstrate",
    "conclude",
    "assume",
    "verify",
    "expect",
    "emphasize",
    "believe",
    "confirm",
    "recall",
)
_AUTHORS = (
    "Smith",
    "Zhang",
    "Wang",
    "Mueller",
    "Garcia",
    "Kim",
    "Nguyen",
    "Rossi",
    "Tanaka",
    "Ivanov",
    "Johnson",
    "Schmidt",
    "Dubois",
    "Kowalski",
    "Li",
    "Chen",
    "Brown",
    "Novak",
    "Silva",
    "Cohen",
)
_NUMBERS = (
    "0.05",
    "1.5",
    "0.01",
    "2.5",
    "0.1",
    "3",
    "10",
    "100",
    "0.5",
    "1.2",
    "4.2",
    "12",
    "25",
    "0.3",
    "1,000",
    "50",
    "0.95",
    "7",
    "2",
    "300",
    "0.001",
    "1.96",
    "64",
    "20",
)
_UNITS = (
    "K",
    "nm",
    "ms",
    "GeV",
    "mg",
    "Hz",
    "mm",
    "eV",
    "s",
    "T",
    "kg",
    "cm",
)

# Misspelling pairs (wrong, right) that editors fix; right forms occur in the vocabulary above.
_HYPHEN_VARIANTS = {
    "non-linear": "nonlinear",
    "non-zero": "nonzero",
    "non-negative": "nonnegative",
    "multi-scale": "multiscale",
    "non-trivial": "nontrivial",
    "self-consistent": "selfconsistent",
    "dataset": "data-set",
    "subspace": "sub-space",
    "eigenvalue": "eigen-value",
    "coordinate": "co-ordinate",
    "preprocessing": "pre-processing",
    "large-scale": "largescale",
    "high-dimensional": "highdimensional",
    "two-dimensional": "twodimensional",
}
_MISSPELLINGS = {
    "occurred": "occured",
    "separate": "seperate",
    "weighted": "weigthed",
    "receive": "recieve",
    "necessary": "neccessary",
    "dependence": "dependance",
    "independent": "independant",
    "parameter": "paramter",
    "length": "lenght",
    "consistent": "consistant",
    "approximately": "appoximately",
    "significant": "signficant",
    "asymmetric": "assymetric",
    "equivalent": "equivalant",
    "similar": "simmilar",
    "successful": "succesful",
    "occurrence": "occurence",
    "transform": "tranform",
    "experiment": "experiement",
    "analysis": "anaylsis",
    "performance": "perfomance",
    "distribution": "distrubution",
    "previous": "previuos",
    "relevant": "relevent",
    "accuracy": "accuracey",
    "therefore": "therefor",
    "achieve": "acheive",
    "explicitly": "explicitely",
}

_SPELLING_WRONG = frozenset(_HYPHEN_VARIANTS.values()) | frozenset(_MISSPELLINGS.values())


# --------------------------------------------------------------------------------------------
# Grammar.  Each builder returns a list of tokens of a clean, correctly edited sentence.

_R = random.Random
_Toks = list[_Tok]


def _article(next_word: str) -> str:
    """'a' or 'an' for the following word (spelling rule, enough for this vocabulary)."""
    w = next_word.lower()
    vowel = w[:1] in ("a", "e", "i", "o", "u") and not w.startswith(("uni", "use", "one", "eu"))
    return "an" if vowel else "a"


def _noun_phrase(rng: _R, dom: str, plural: bool | None = None) -> tuple[_Toks, bool]:
    """A determiner-adjective-noun phrase, sometimes with a symbol or a PP; returns (tokens, plural)."""
    if plural is None:
        plural = rng.random() < 0.4
    sing, plu = rng.choice(_NOUNS[dom])
    noun = plu if plural else sing
    adj = rng.choice(_ADJECTIVES) if rng.random() < 0.45 else ""
    body = (*_t(adj), *_t(noun)) if adj else _t(noun)
    r = rng.random()
    out: _Toks
    if r < 0.55:
        out = [*_t("the~a"), *body]
    elif r < 0.72 and not plural:
        art = _article(adj or noun)
        out = [_Tok(art, role="art", alt="an" if art == "a" else "a"), *body]
    elif r < 0.82:
        det = rng.choice(("these", "our", "such", "all") if plural else ("this", "our", "each"))
        out = [_Tok(det), *body]
    else:
        out = list(body) if plural else [*_t("the~a"), *body]
    r = rng.random()
    if r < 0.14:
        out.append(_Tok(rng.choice(("_MATH_", "_MATH_", "(_MATH_)"))))
    elif r < 0.40:
        sub, _ = _simple_np(rng, dom)
        out += [*_t(rng.choice(("of", "of", "in", "for", "with~p"))), *sub]
    return out, plural


def _simple_np(rng: _R, dom: str) -> tuple[_Toks, bool]:
    """A short noun phrase without modifiers, used inside prepositional phrases."""
    plural = rng.random() < 0.35
    sing, plu = rng.choice(_NOUNS[dom])
    r = rng.random()
    if r < 0.12:
        return [_Tok("_MATH_")], False
    if plural:
        if r < 0.55:
            return [*_t("the~a"), *_t(plu)], True
        return list(_t(plu)), True
    if r < 0.75:
        return [*_t("the~a"), *_t(sing)], False
    art = _article(sing)
    return [_Tok(art, role="art", alt="an" if art == "a" else "a"), *_t(sing)], False


def _be(plural: bool, past: bool = False) -> _Tok:
    """A form of 'to be' that a mixed edit may swap for the wrong number."""
    right, wrong = ("were", "was") if past else ("are", "is")
    if not plural:
        right, wrong = wrong, right
    return _Tok(right, role="agree", alt=wrong)


def _have(plural: bool) -> _Tok:
    return (
        _Tok("have", role="agree", alt="has") if plural else _Tok("has", role="agree", alt="have")
    )


def _ref(rng: _R) -> _Toks:
    """A reference to a figure, table, section or equation (an extra 'the' before it is an error)."""
    name = rng.choice(("Fig.", "Fig.", "Table", "Section", "Eq.", "Eqs.", "Appendix", "Figure"))
    if name == "Eqs.":
        return [_Tok(name, slot="noart"), *_t("_REF_ and _REF_")]
    return [_Tok(name, slot="noart"), _Tok("_REF_")]


def _cite(rng: _R) -> _Toks:
    r = rng.random()
    if r < 0.35:
        return [_Tok("_CITE_")]
    if r < 0.6:
        return [_Tok("(_CITE_)")]
    a = rng.choice(_AUTHORS)
    if r < 0.85:
        return [*_t(f"{a} et_SP_al."), _Tok("(_CITE_)")]
    return [*_t(a), *_t("&"), *_t(rng.choice(_AUTHORS)), _Tok("(_CITE_)")]


def _verb_phrase(rng: _R, dom: str, plural: bool) -> _Toks:
    """A predicate agreeing with a subject of the given number."""
    r = rng.random()
    if r < 0.28:
        sing, plu, prep = rng.choice(_TRANSITIVE)
        out = [_Tok(plu if plural else sing)]
        if prep:
            out += _t(prep)
        obj, _ = _noun_phrase(rng, dom)
        out += obj
        if rng.random() < 0.2:
            out += [*_t("by a~a factor of"), _Tok(rng.choice(_NUMBERS))]
        return out
    if r < 0.48:
        adv = rng.choice(("", "", "", "approximately", "not", "largely", "strongly", "only weakly"))
        out = [_be(plural), *_t(adv), *_t(rng.choice(_PREDICATES))]
        obj, _ = _noun_phrase(rng, dom)
        return out + obj
    if r < 0.62:
        out = [_have(plural), *_t("been"), *_t(rng.choice(_PARTICIPLES))]
        tail = rng.random()
        if tail < 0.35:
            out += [*_t("in"), *_ref(rng)]
        elif tail < 0.7:
            out += [*_t(rng.choice(("in", "by", "in"))), *_cite(rng)]
        else:
            out += _t(rng.choice(("extensively", "in detail", "recently", "numerically")))
        return out
    if r < 0.74:
        out = [
            _be(plural),
            *_t(rng.choice(_PARTICIPLES)),
            *_t(rng.choice(("in", "in", "from"))),
        ]
        return out + _ref(rng)
    if r < 0.84:
        out = [_be(plural, past=rng.random() < 0.4), *_t(rng.choice(_PARTICIPLES))]
        tail = rng.random()
        if tail < 0.5:
            out += [*_t("with an~a=a accuracy of"), _Tok(rng.choice(_NUMBERS))]
            out += _t(rng.choice(("percent", "")))
        else:
            out += [*_t("using"), *_noun_phrase(rng, dom)[0]]
        return out
    if r < 0.92:
        do = (
            _Tok("do", role="agree", alt="does") if plural else _Tok("does", role="agree", alt="do")
        )
        sing, plu, prep = rng.choice(_TRANSITIVE)
        out = [do, *_t("not"), _Tok(plu)]
        if prep:
            out += _t(prep)
        return out + _noun_phrase(rng, dom)[0]
    out = [_be(plural), _Tok(rng.choice(("larger", "smaller", "higher", "lower"))), *_t("than")]
    return out + rng.choice(
        ([_Tok(rng.choice(_NUMBERS))], [_Tok("_MATH_")], _simple_np(rng, dom)[0])
    )


def _clause(rng: _R, dom: str) -> _Toks:
    """Subject plus predicate; an extra comma between them is a classic error."""
    r = rng.random()
    if r < 0.1:
        subj, plural = [_Tok("_MATH_")], False
    elif r < 0.15:
        subj, plural = [*_t("the _MATH_'s")], True
    elif r < 0.2:
        sing, _ = rng.choice(_NOUNS[dom])
        subj, plural = [*_t("the~a _MATH_-th"), *_t(sing), *_t("of"), _Tok("_MATH_")], False
    else:
        subj, plural = _noun_phrase(rng, dom)
    if rng.random() < 0.12:
        # a restrictive relative clause: "that" may be wrongly replaced by "which"
        subj = [
            *subj,
            _Tok("that", role="rel", alt="which"),
            *_t("we"),
            _Tok(rng.choice(("propose", "consider", "use", "study", "obtain"))),
        ]
    last = subj[-1]
    subj[-1] = last._replace(slot=last.slot or "comma")
    out = subj + _verb_phrase(rng, dom, plural)
    return out + _tail(rng, dom) if rng.random() < 0.5 else out


_TAILS = (
    "in the limit _MATH_",
    "for all _MATH_",
    "for large values of _MATH_",
    "at low temperatures",
    "in the absence of~p noise",
    "under these conditions",
    "in most cases",
    "to a good approximation",
    "within the experimental uncertainty",
    "for _MATH_ > 0",
    "up to a constant factor",
    "in the regime _MATH_",
    "at the same time",
    "with high probability",
    "by construction",
)


def _tail(rng: _R, dom: str) -> _Toks:
    """A trailing modifier that lengthens a clause without changing what it claims."""
    r = rng.random()
    if r < 0.5:
        return list(_t(rng.choice(_TAILS)))
    if r < 0.65:
        return [*_t("as shown in"), *_ref(rng)]
    if r < 0.8:
        return [
            *_t(rng.choice(("in the presence of~p", "as a function of~p", "in terms of~p"))),
            *_noun_phrase(rng, dom)[0],
        ]
    if r < 0.9:
        return list(_t("(see also _CITE_ )")) if rng.random() < 0.5 else _cite(rng)
    return [*_t(", which is"), *_t(rng.choice(_PREDICATES)), *_noun_phrase(rng, dom)[0]]


_INTROS = (
    "In this paper",
    "In this work",
    "For simplicity",
    "Moreover",
    "However",
    "In addition",
    "As a result",
    "To this end",
    "On the other hand",
    "In particular",
    "For example",
    "Consequently",
    "At low temperatures",
    "Without loss of generality",
    "Similarly",
    "In practice",
    "Throughout this paper",
    "Finally",
    "Recently",
    "Therefore",
    "In contrast",
    "Nevertheless",
    "For comparison",
    "In the following",
    "As expected",
    "To our knowledge",
)


def _intro(rng: _R, dom: str) -> _Toks:
    """An introductory phrase ending in a comma the editor could have had to insert."""
    r = rng.random()
    if r < 0.12:
        out = [
            *_t(rng.choice(("As shown in", "As discussed in", "As described in", "From"))),
            *_ref(rng),
        ]
    elif r < 0.2:
        out = [*_t(rng.choice(("Following", "According to~p", "As in", "Unlike"))), *_cite(rng)]
    elif r < 0.28:
        out = [
            *_t(rng.choice(("For large", "In the limit", "For small", "For each"))),
            _Tok("_MATH_"),
        ]
    elif r < 0.34:
        out = [*_t("In order to~p"), _Tok(rng.choice(_INFINITIVES)), *_noun_phrase(rng, dom)[0]]
    elif r < 0.4:
        out = [
            *_t(rng.choice(("Due to~p", "In contrast to~p", "Compared to~p", "Because of~p"))),
            *_noun_phrase(rng, dom)[0],
        ]
    else:
        out = list(_t(rng.choice(_INTROS)))
    return [*out, *_t(",~i")]


def _list_np(rng: _R, dom: str) -> _Toks:
    """Three noun phrases in a list (Oxford comma or not, both clean)."""
    a, _ = _simple_np(rng, dom)
    b, _ = _simple_np(rng, dom)
    c, _ = _simple_np(rng, dom)
    comma = _t(",") if rng.random() < 0.5 else ()
    return [*a, *_t(","), *b, *comma, *_t("and"), *c]


def _s_show(rng: _R, dom: str) -> _Toks:
    intro = _intro(rng, dom) if rng.random() < 0.4 else []
    verb = rng.choice(_SHOW_VERBS)
    return [*intro, *_t("we"), _Tok(verb, slot="comma"), *_t("that"), *_clause(rng, dom)]


def _s_plain(rng: _R, dom: str) -> _Toks:
    intro = _intro(rng, dom) if rng.random() < 0.5 else []
    return [*intro, *_clause(rng, dom)]


def _s_display(rng: _R, dom: str) -> _Toks:
    np_, _ = _noun_phrase(rng, dom, plural=False)
    head = rng.choice(
        ("is given by", "is defined as", "can be written as", "reads", "takes the form")
    )
    words = list(_t(head))
    words[-1] = words[-1]._replace(slot="colon")
    out = [*np_, *words, _Tok("_MATHDISP_")]
    if rng.random() < 0.85:
        out += [
            *_t("where _MATH_"),
            *_t(rng.choice(("is", "denotes", "is"))),
            *_noun_phrase(rng, dom)[0],
        ]
        if rng.random() < 0.4:
            out += [
                *_t("and _MATH_"),
                *_t(rng.choice(("is", "denotes"))),
                *_noun_phrase(rng, dom)[0],
            ]
    return out


def _s_obtain(rng: _R, dom: str) -> _Toks:
    intro = _intro(rng, dom) if rng.random() < 0.5 else []
    if not intro or rng.random() < 0.5:
        intro = [
            *_t(rng.choice(("Substituting", "Inserting", "Combining", "Using"))),
            _Tok("Eq.", slot="noart"),
            _Tok("_REF_"),
            *_t(rng.choice(("into", "with", "and"))),
            _Tok("Eq.", slot="noart"),
            _Tok("_REF_"),
            *_t(",~i"),
        ]
    verb = rng.choice(("we obtain", "we find", "one obtains", "we arrive at", "this yields"))
    words = list(_t(verb))
    words[-1] = words[-1]._replace(slot="colon")
    out = [*intro, *words, _Tok("_MATHDISP_")]
    if rng.random() < 0.6:
        out += [*_t("where _MATH_ is"), *_noun_phrase(rng, dom)[0]]
    return out


def _s_use(rng: _R, dom: str) -> _Toks:
    subj = rng.choice(("We use", "We employ", "We apply", "We adopt", "Here we use"))
    obj, _ = _noun_phrase(rng, dom, plural=False)
    out = [*_t(subj), *obj, *_t("to"), _Tok(rng.choice(_INFINITIVES)), *_noun_phrase(rng, dom)[0]]
    if rng.random() < 0.35:
        abbrev = rng.choice(("i.e.", "e.g."))
        out += [*_t(","), _Tok(abbrev), *_t(","), *_noun_phrase(rng, dom)[0]]
    return out


def _s_summary(rng: _R, dom: str) -> _Toks:
    _, plu = rng.choice(_NOUNS[dom])
    first = rng.choice(("The", "Our", "All", "The main"))
    verb = rng.choice(("summarized", "shown", "listed", "presented", "compared"))
    out = [*_t(first), *_t(plu), *_t("are"), *_t(verb), *_t("in"), *_ref(rng)]
    if rng.random() < 0.3:
        out += [*_t("for"), *_noun_phrase(rng, dom)[0]]
    if rng.random() < 0.6:
        out += [
            *_t(", which"),
            *_t(rng.choice(("also shows", "also includes", "also lists"))),
            *_noun_phrase(rng, dom)[0],
        ]
    return out


def _s_notation(rng: _R, dom: str) -> _Toks:
    out = [*_t("Here ,~i _MATH_ denotes"), *_noun_phrase(rng, dom)[0]]
    if rng.random() < 0.6:
        out += [*_t(", _MATH_ is"), *_noun_phrase(rng, dom)[0]]
    out += [*_t("and _MATH_ is"), *_noun_phrase(rng, dom)[0]]
    return out


def _s_consistent(rng: _R, dom: str) -> _Toks:
    start = rng.choice(
        ("This result is", "This is", "These findings are", "This behavior is", "Our estimate is")
    )
    out = [*_t(start), *_t(rng.choice(("consistent with~p", "in agreement with~p")))]
    r = rng.random()
    if r < 0.5:
        out += [
            *_t("the~a"),
            *_t(rng.choice(("results", "predictions", "measurements", "findings"))),
            *_t("of"),
            *_cite(rng),
        ]
    else:
        out += [
            *_noun_phrase(rng, dom)[0],
            *_t(rng.choice(("reported in", "obtained in"))),
            *_cite(rng),
        ]
    return out


def _s_relative(rng: _R, dom: str) -> _Toks:
    subj, plural = _noun_phrase(rng, dom)
    rel = rng.choice(
        (
            "we propose",
            "we consider",
            "we use",
            "are used",
            "is used",
            "we study",
            "was introduced in",
        )
    )
    if rel in ("are used", "is used"):
        rel = "are used" if plural else "is used"
    out = [*subj, _Tok("that", role="rel", alt="which"), *_t(rel)]
    if rel.endswith("in"):
        out += _cite(rng)
    out[-1] = out[-1]._replace(slot=out[-1].slot or "comma")
    return out + _verb_phrase(rng, dom, plural)


def _s_numbers(rng: _R, dom: str) -> _Toks:
    r = rng.random()
    n1, n2 = rng.choice(_NUMBERS), rng.choice(_NUMBERS)
    if r < 0.3:
        a, _ = _noun_phrase(rng, dom, plural=False)
        sing, _ = rng.choice(_NOUNS[dom])
        return [*a, *_t("was set to"), _Tok(n1), *_t(", and the~a"), *_t(sing), *_t("to"), _Tok(n2)]
    if r < 0.55:
        sing, plu = rng.choice(_NOUNS[dom])
        return [
            *_t("The difference between the~a two"),
            *_t(plu),
            *_t("is statistically significant (p < 0.05 )"),
        ]
    if r < 0.8:
        u = rng.choice(_UNITS)
        return [
            *_t("All"),
            *_t(rng.choice(_NOUNS[dom])[1]),
            *_t("were"),
            _Tok(rng.choice(_PARTICIPLES)),
            *_t("at"),
            _Tok(n1),
            _Tok(u),
            *_t("and"),
            _Tok(n2),
            _Tok(u),
            *_t(", respectively"),
        ]
    return [
        *_t("In approximately"),
        _Tok(n1 + "%"),
        *_t("of the~a"),
        *_t(rng.choice(_NOUNS[dom])[1]),
        *_t(",~i the~a"),
        *_t(rng.choice(_NOUNS[dom])[0]),
        *_t("exceeds _MATH_ for _MATH_ > 0"),
    ]


def _s_note(rng: _R, dom: str) -> _Toks:
    head = rng.choice(
        (
            "Note that",
            "Recall that",
            "It is well-known that",
            "It follows that",
            "It is easy to see that",
            "Observe that",
            "This implies that",
            "It is worth noting that",
        )
    )
    words = list(_t(head))
    if head.startswith(("It is", "This implies", "It follows")):
        words[-2] = words[-2]._replace(slot="comma")
    return [*words, *_clause(rng, dom)]


def _s_including(rng: _R, dom: str) -> _Toks:
    _, plu = rng.choice(_NOUNS[dom])
    adj = rng.choice(_ADJECTIVES) if rng.random() < 0.5 else ""
    word = rng.choice(("such as", "including", "namely", "e.g."))
    words = list(_t(word))
    words[-1] = words[-1]._replace(slot="colon")
    verb = rng.choice(("were considered", "have been studied", "are discussed"))
    return [*_t("Several"), *_t(adj), *_t(plu), *_t(verb), *_t(","), *words, *_list_np(rng, dom)]


def _s_since(rng: _R, dom: str) -> _Toks:
    conj = rng.choice(("Since", "Although", "If", "Because", "While"))
    return [*_t(conj), *_clause(rng, dom), *_t(",~i"), *_clause(rng, dom)]


def _s_compare(rng: _R, dom: str) -> _Toks:
    subj, _ = _noun_phrase(rng, dom)
    out = [*subj, *_t("can be"), _Tok(rng.choice(_PARTICIPLES))]
    out[len(subj) - 1] = out[len(subj) - 1]._replace(slot="comma")
    if rng.random() < 0.5:
        out += [*_t("using"), *_noun_phrase(rng, dom)[0]]
    out += [*_t("(see"), *_ref(rng)]
    if rng.random() < 0.3:
        out += _t("and _CITE_")
    return [*out, *_t(")")]


_TEMPLATES: tuple[tuple[Callable[[_R, str], _Toks], int], ...] = (
    (_s_show, 12),
    (_s_plain, 18),
    (_s_display, 8),
    (_s_obtain, 4),
    (_s_use, 8),
    (_s_summary, 5),
    (_s_notation, 5),
    (_s_consistent, 6),
    (_s_relative, 6),
    (_s_numbers, 5),
    (_s_note, 8),
    (_s_including, 4),
    (_s_since, 6),
    (_s_compare, 5),
)
_TEMPLATE_FUNCS = tuple(f for f, _ in _TEMPLATES)
_TEMPLATE_WEIGHTS = tuple(w for _, w in _TEMPLATES)
_CONNECTIVES = (
    ", and",
    ", whereas",
    "; however ,",
    "; moreover ,",
    ", while",
    "; in addition ,",
    ", so that",
    "; therefore ,",
)


def _base_sentence(rng: _R, dom: str) -> _Toks:
    """A clean sentence: one template, or a long chain of clauses (a few percent)."""
    toks = rng.choices(_TEMPLATE_FUNCS, _TEMPLATE_WEIGHTS)[0](rng, dom)
    r = rng.random()
    if r < _COMPOUND_SHARE:
        toks += [*_t(rng.choice(_CONNECTIVES)), *_clause(rng, dom)]
    elif r < _COMPOUND_SHARE + _LONG_SHARE:
        while len(toks) < 66:
            toks += [*_t(rng.choice(_CONNECTIVES)), *_clause(rng, dom)]
            if rng.random() < 0.5:
                toks += [*_t("as shown in"), *_ref(rng)]
    toks.append(_Tok(".", space=False))
    first = toks[0]
    toks[0] = first._replace(text=first.text[:1].upper() + first.text[1:])
    return toks


# --------------------------------------------------------------------------------------------
# Error injection.  An edit is (coordinate, kind, base index, payload); coordinates place
# token k at 2k and the gap after it at 2k + 1, so that edits can be kept apart.


class _Edit(NamedTuple):
    coord: int
    action: str  # "del_after" | "del_before" | "ins" | "replace"
    index: int
    payload: tuple[str, ...] = ()


_WORD = re.compile(r"^[a-z]+$")
_LONG_WORD = re.compile(r"^[a-z]{5,}$")
_FUNCTION_WORDS = frozenset(
    {
        "the",
        "of",
        "to",
        "a",
        "is",
        "in",
        "and",
        "that",
        "we",
        "are",
        "for",
        "with",
        "be",
        "by",
        "on",
        "an",
        "this",
    }
)


def _vocabulary() -> frozenset[str]:
    """All lowercase words the grammar can emit; a generated misspelling must not be one of them."""
    words: set[str] = set()
    pools: list[tuple[str, ...]] = [
        _ADJECTIVES,
        _PARTICIPLES,
        _INFINITIVES,
        _SHOW_VERBS,
        _INTROS,
        _PREDICATES,
        _GENERAL_NOUNS,
        *_DOMAIN_NOUNS.values(),
    ]
    pools += [tuple(p for n in nouns for p in n) for nouns in _NOUNS.values()]
    pools.append(tuple(w for triple in _TRANSITIVE for w in triple))
    for pool in pools:
        for phrase in pool:
            words.update(re.findall(r"[a-z]+", phrase.lower()))
    words.update(_FUNCTION_WORDS)
    return frozenset(words)


_VOCAB = _vocabulary()


def _misspell(rng: _R, word: str) -> str:
    """A typo of the kind editors fix: transposed, dropped or doubled letter (never a real word)."""
    for _ in range(20):
        i = rng.randrange(1, len(word) - 1)
        r = rng.random()
        if r < 0.4 and word[i] != word[i + 1]:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif r < 0.75:
            out = word[:i] + word[i + 1 :]
        elif word[i] not in "aeiouy" and word[i] != word[i - 1] and word[i] != word[i + 1]:
            out = word[:i] + word[i] + word[i:]
        else:
            continue
        if out != word and out not in _VOCAB:
            return out
    return word[:-2] + word[-1] + word[-2]


_OPS = (
    "x_comma",
    "x_colon",
    "x_article",
    "dup",
    "dup_fn",
    "m_article",
    "m_comma",
    "m_prep",
    "replace",
    "hyphen",
    "curated",
    "typo",
)
# Where an operation acts relative to token k: 0 the token itself, 1 the gap after, -1 before.
_OFFSET = {"x_comma": 1, "x_colon": 1, "x_article": -1, "dup": 1, "dup_fn": 1}
_ROLE_OP = {"art": "m_article", "comma": "m_comma", "prep": "m_prep"}


@lru_cache(maxsize=8192)
def _word_ops(text: str) -> tuple[str | None, str | None]:
    """(duplication op, spelling op) a word allows; cached because words repeat endlessly."""
    dup = None
    if _WORD.match(text):
        dup = "dup_fn" if text in _FUNCTION_WORDS else "dup"
    if text in _HYPHEN_VARIANTS:
        spell = "hyphen"
    elif text in _MISSPELLINGS:
        spell = "curated"
    elif _LONG_WORD.match(text) and text not in _FUNCTION_WORDS:
        spell = "typo"
    else:
        spell = None
    return dup, spell


def _iter_candidates(toks: _Toks) -> Iterator[tuple[str, int]]:
    """(operation, token index) for every single edit that could inject an error here."""
    n = len(toks)
    for k, t in enumerate(toks):
        nxt = toks[k + 1] if k + 1 < n else None
        slot = t.slot
        if slot:
            if slot == "noart":
                if k > 0 and toks[k - 1].text not in ("the", "The"):
                    yield "x_article", k
            elif nxt is not None and nxt.space:
                yield ("x_comma" if slot == "comma" else "x_colon"), k
        if k == 0:
            continue
        dup, spell = _word_ops(t.text)
        if dup and not (nxt is not None and nxt.text == t.text):
            yield dup, k
        if t.role:
            if t.role in _ROLE_OP:
                yield _ROLE_OP[t.role], k
            if t.alt and t.alt != t.text:
                yield "replace", k
        if spell:
            yield spell, k


def _candidates(toks: _Toks) -> dict[str, list[int]]:
    """Token indices at which each single-edit operation could inject an error."""
    c: dict[str, list[int]] = {op: [] for op in _OPS}
    for op, k in _iter_candidates(toks):
        c[op].append(k)
    return c


def _edit(op: str, k: int, toks: _Toks) -> _Edit:
    """The edit that operation op makes at token k."""
    coord = 2 * k + _OFFSET.get(op, 0)
    if op in ("x_comma", "x_colon"):
        return _Edit(coord, "del_after", k, ("," if op == "x_comma" else ":",))
    if op == "x_article":
        return _Edit(coord, "del_before", k, ("the",))
    if op in ("dup", "dup_fn"):
        return _Edit(coord, "del_after", k, (toks[k].text,))
    if op.startswith("m_"):
        return _Edit(coord, "ins", k)
    wrong = {
        "replace": toks[k].alt,
        "hyphen": _HYPHEN_VARIANTS.get(toks[k].text, ""),
        "curated": _MISSPELLINGS.get(toks[k].text, ""),
    }.get(op, "")
    return _Edit(coord, "replace", k, (wrong,))


def _pick(
    rng: _R, toks: _Toks, c: dict[str, list[int]], ops: dict[str, int], taken: list[_Edit]
) -> bool:
    """Add one edit drawn from the weighted operations, kept apart from edits already taken."""
    used = [t.coord for t in taken]
    free: dict[str, list[int]] = {}
    for op in ops:
        off = _OFFSET.get(op, 0)
        ks = [k for k in c[op] if all(abs(2 * k + off - u) >= 3 for u in used)]
        if ks:
            free[op] = ks
    if not free:
        return False
    op = rng.choices(list(free), [ops[o] for o in free])[0]
    taken.append(_edit(op, rng.choice(free[op]), toks))
    return True


_DELETE_OPS = {"x_comma": 8, "x_colon": 6, "x_article": 4, "dup_fn": 2, "dup": 1}
_INSERT_OPS = {"m_article": 4, "m_comma": 5, "m_prep": 4}
_SPELL_OPS = {"hyphen": 12, "curated": 4, "typo": 4}


_MIXED_OTHER_OPS = frozenset({"replace", *_INSERT_OPS, *_SPELL_OPS})
_NEEDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "deleted": (frozenset(_DELETE_OPS), frozenset(_DELETE_OPS)),
    "inserted": (frozenset(_INSERT_OPS), frozenset(_INSERT_OPS)),
    "spelling": (frozenset(_SPELL_OPS), frozenset(_SPELL_OPS)),
    "mixed": (frozenset(_DELETE_OPS), _MIXED_OTHER_OPS),
}


def _applicable(kind: str, toks: _Toks) -> bool:
    """Whether an edit of this kind can be injected; clean sentences pass the same filter.

    Stops at the first proof, since most sentences qualify within a few tokens.
    """
    first, second = _NEEDS[kind]
    got_first = got_second = False
    for op, _ in _iter_candidates(toks):
        got_first = got_first or op in first
        got_second = got_second or op in second
        if got_first and got_second:
            return True
    return False


def _choose_edits(rng: _R, toks: _Toks, kind: str, c: dict[str, list[int]]) -> list[_Edit]:
    taken: list[_Edit] = []
    if kind == "deleted":
        _pick(rng, toks, c, _DELETE_OPS, taken)
        if rng.random() < 0.22:
            _pick(rng, toks, c, _DELETE_OPS, taken)
    elif kind == "inserted":
        _pick(rng, toks, c, _INSERT_OPS, taken)
        if rng.random() < 0.1:
            _pick(rng, toks, c, _INSERT_OPS, taken)
    elif kind == "spelling":
        _pick(rng, toks, c, _SPELL_OPS, taken)
    else:
        for _ in range(8):
            taken = []
            r = rng.random()
            if r < 0.4 and c["replace"]:
                _pick(rng, toks, c, {"replace": 1}, taken)  # a word swapped for a different word
            elif r < 0.75 and _pick(rng, toks, c, _INSERT_OPS, taken):
                _pick(rng, toks, c, _DELETE_OPS, taken)  # a deletion and an insertion elsewhere
            else:
                _pick(rng, toks, c, {"replace": 2, **_SPELL_OPS}, taken)
                _pick(rng, toks, c, {**_DELETE_OPS, **_INSERT_OPS}, taken)
            if _is_mixed(taken):
                break
    return taken


def _is_mixed(edits: list[_Edit]) -> bool:
    """Whether these edits read as 'mixed': a word replaced, or edits of different kinds."""
    kinds = set()
    for e in edits:
        if e.action == "replace":
            kinds.add("spell" if e.payload[0] == "" or e.payload[0] in _SPELLING_WRONG else "word")
        else:
            kinds.add("del" if e.action.startswith("del") else "ins")
    return "word" in kinds or len(kinds) >= 2 or (len(edits) >= 2 and kinds == {"spell"})


# Output tokens: (text, space before, mark) with mark "" | "del" | "ins".
_Out = tuple[str, bool, str]


def _apply(rng: _R, toks: _Toks, edits: list[_Edit]) -> list[_Out]:
    """The sentence with the errors injected: each error marked as the editor's correction."""
    before: dict[int, list[_Out]] = {}
    after: dict[int, list[_Out]] = {}
    change: dict[int, list[_Out]] = {}
    for e in edits:
        t = toks[e.index]
        if e.action == "del_after":
            after[e.index] = [(e.payload[0], e.payload[0] not in _PUNCT, "del")]
        elif e.action == "del_before":
            before[e.index] = [(e.payload[0], True, "del")]
        elif e.action == "ins":
            change[e.index] = [(t.text, t.space, "ins")]
        else:
            wrong = e.payload[0] or _misspell(rng, t.text)
            change[e.index] = [(wrong, t.space, "del"), (t.text, False, "ins")]
    out: list[_Out] = []
    for k, t in enumerate(toks):
        if k in before:
            out += before[k]
        out += change.get(k) or [(t.text, t.space, "")]
        if k in after:
            out += after[k]
    return out


def _escape(text: str) -> str:
    """XML-escape text content (quotes need no escaping outside attributes)."""
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _inner(run: list[_Out]) -> str:
    """The text of a run of tokens inside one tag, without its leading space."""
    return "".join((" " if i and sp else "") + _escape(tx) for i, (tx, sp, _) in enumerate(run))


def _render(toks: list[_Out]) -> str:
    """Sentence text with <del>/<ins>, whitespace placed inside tags as AESW does.

    A removed or added word takes the following space into its tag (``in <del>the </del>Section``)
    so that both the text before and the text after editing stay singly spaced.
    """
    parts: list[str] = []
    n = len(toks)
    i = 0
    eaten = False
    while i < n:
        text, space, mark = toks[i]
        sp = space and i > 0 and not eaten
        eaten = False
        if not mark:
            parts.append((" " if sp else "") + _escape(text))
            i += 1
            continue
        j = i
        while j < n and toks[j][2] == mark:
            j += 1
        k = j
        if j < n and toks[j][2] and toks[j][2] != mark:
            other = toks[j][2]
            while k < n and toks[k][2] == other:
                k += 1
            parts.append(
                (" " if sp else "") + f"<{mark}>{_inner(toks[i:j])}</{mark}>"
                f"<{other}>{_inner(toks[j:k])}</{other}>"
            )
        else:
            body = _inner(toks[i:j])
            next_space = j < n and toks[j][1]
            if next_space and (sp or i == 0):
                parts.append((" " if sp else "") + f"<{mark}>{body} </{mark}>")
                eaten = True
            elif sp:
                parts.append(f"<{mark}> {body}</{mark}>")
            else:
                parts.append(f"<{mark}>{body}</{mark}>")
        i = k
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Public API.


def _sentence_body(rng: _R, dom: str) -> str:
    """The inside of one <sentence> element: clean or carrying editor edits."""
    kind = rng.choices(_KINDS, _KIND_WEIGHTS)[0]
    edited = rng.random() < _EDITED_SHARE
    toks = _base_sentence(rng, dom)
    while not _applicable(kind, toks):
        toks = _base_sentence(rng, dom)
    if not edited:
        return _escape("".join([" " + t.text if t.space else t.text for t in toks])[1:])
    edits = _choose_edits(rng, toks, kind, _candidates(toks))
    return _render(_apply(rng, toks, edits))


def _paragraphs(n: int, seed: int) -> Iterator[tuple[int, int, str]]:
    """(paragraph id, sentence index, sentence element) for the first n sentences of the stream."""
    rng = random.Random(seed)
    made = 0
    pid = 0
    while made < n:
        pid += 1
        size = rng.choices(_PARAGRAPH_SIZES, _PARAGRAPH_WEIGHTS)[0]
        dom = rng.choice(_DOMAINS)
        for s in range(min(size, n - made)):
            yield pid, s, f'<sentence sid="{pid}.{s}">{_sentence_body(rng, dom)}</sentence>'
            made += 1


def generate_sentences(n: int, seed: int) -> Iterator[str]:
    """Yield n ``<sentence sid="P.S">`` elements; the same stream ``write_aesw`` writes."""
    for _, _, xml in _paragraphs(n, seed):
        yield xml


def write_aesw(path: Path, n: int, seed: int, *, force: bool = False) -> None:
    """Write an AESW-format file of n synthetic sentences, streaming (constant memory), through
    ``engine.outputs`` (never over a store, never over a file without ``force``, never half)."""
    if n < 1:
        raise EditlensError(f"--sentences {n}: give a number of sentences of at least 1")
    with (
        output_file(Path(path), force=force) as temporary,
        temporary.open("w", encoding="utf-8", newline="\n") as f,
    ):
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n<text>\n')
        current = 0
        for pid, _, xml in _paragraphs(n, seed):
            if pid != current:
                if current:
                    f.write("</p>\n")
                f.write(f'<p pid="{pid}">\n')
                current = pid
            f.write(xml)
            f.write("\n")
        if current:
            f.write("</p>\n")
        f.write("</text>\n</xml>\n")
