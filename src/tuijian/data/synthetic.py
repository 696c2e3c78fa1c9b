"""The built-in world: a synthetic shop whose logs have structure a good model can learn.

Users hold a taste, a mixture over categories plus a latent factor vector, that drifts slowly
from a first to a second taste over the simulated days. Items belong to one category, have a
latent vector near their category's centre, a long-tail (Zipf) popularity, and a title and a
description whose words depend on the category and the latent vector, so content models learn.
Users visit in sessions focused on one category: each view picks, among a few candidates drawn
by popularity, the one the user likes best (Gumbel-max); a view may lead to a cart and a cart
to a buy, more often for items the user likes. Every step is vectorized numpy.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuijian.data.columns import Columns
from tuijian.data.sources.base import RawData
from tuijian.errors import ConfigError

C = Columns
SEGMENT: Final = "segment"
"""User feature column: the category the user shops most at the start (70% of users; else noise)."""
_CATEGORY: Final = "__category"

# category: adjectives, materials, nouns, features, uses (", "-separated word lists)
_WORDS: Final[dict[str, tuple[str, str, str, str, str]]] = {
    "apparel": (
        "cozy, classic, slim, relaxed, vintage, tailored, casual, elegant",
        "wool, cotton, linen, denim, cashmere, fleece",
        "scarf, jacket, sweater, shirt, dress, coat, hoodie, trousers",
        "soft knit, button front, hidden pockets, ribbed cuffs, a relaxed fit, a stretch waist, "
        "breathable weave, lined hood",
        "cold mornings, the office, weekend outings, evening dinners, travel days",
    ),
    "electronics": (
        "wireless, compact, smart, portable, rugged, ultra, digital, fast",
        "aluminium, carbon, polymer, glass, silicone, steel",
        "headphones, speaker, charger, tablet, camera, keyboard, monitor, router",
        "bluetooth pairing, noise cancelling, long battery life, usb charging, a bright display, "
        "fast wifi, voice control, a high resolution sensor",
        "commuting, gaming, home offices, video calls, streaming",
    ),
    "kitchen": (
        "nonstick, sturdy, heavy, sleek, professional, rustic, ceramic, enamel",
        "cast iron, stainless, bamboo, copper, stoneware, porcelain",
        "skillet, saucepan, knife, kettle, blender, mixing bowl, cutting board, teapot",
        "even heating, a riveted handle, dishwasher safe parts, a sharp edge, a tight lid, "
        "oven safe glaze, a pour spout, precise temperature",
        "weeknight dinners, baking, meal prep, brewing tea, family feasts",
    ),
    "books": (
        "gripping, thoughtful, illustrated, classic, witty, epic, haunting, practical",
        "hardcover, paperback, cloth, leather, large print, pocket size",
        "novel, memoir, cookbook, atlas, anthology, thriller, biography, guide",
        "vivid characters, a twisting plot, lyrical prose, full colour maps, clear recipes, "
        "historical detail, sharp dialogue, practical exercises",
        "long evenings, book clubs, curious minds, rainy weekends, students",
    ),
    "sports": (
        "lightweight, durable, breathable, grippy, adjustable, aerodynamic, padded, pro",
        "mesh, neoprene, rubber, nylon, foam, graphite",
        "running shoes, yoga mat, dumbbell, racket, helmet, backpack, bottle, gloves",
        "shock absorbing soles, a nonslip surface, quick dry fabric, reflective trim, "
        "adjustable straps, ventilated panels, a firm grip, cushioned support",
        "marathon training, trail runs, the gym, tennis matches, mountain hikes",
    ),
    "beauty": (
        "gentle, nourishing, radiant, fragrant, hydrating, matte, organic, soothing",
        "shea, argan, aloe, jojoba, rosehip, clay",
        "moisturizer, serum, lipstick, shampoo, cleanser, face mask, perfume, body lotion",
        "vitamin c, hyaluronic acid, a light floral scent, spf protection, a silky finish, "
        "long lasting colour, deep conditioning, no parabens",
        "daily routines, dry skin, special occasions, sensitive skin, self care evenings",
    ),
    "toys": (
        "colourful, playful, educational, cuddly, magnetic, wooden, musical, giant",
        "plush, timber, plastic, felt, cardboard, resin",
        "puzzle, building blocks, teddy bear, race car, dollhouse, board game, kite, robot",
        "bright colours, rounded edges, interlocking pieces, sound effects, a storage box, "
        "easy assembly, remote control, glow in the dark parts",
        "toddlers, family game night, birthday gifts, rainy afternoons, young builders",
    ),
    "garden": (
        "hardy, weatherproof, blooming, evergreen, rustic, galvanized, compact, lush",
        "terracotta, cedar, galvanized steel, wicker, resin, burlap",
        "planter, hose, pruning shears, seed kit, watering can, trellis, lantern, bird feeder",
        "drainage holes, rust resistant blades, frost hardy seeds, uv stable finish, "
        "a solar panel, ergonomic grips, a fine rose, a hanging hook",
        "balconies, vegetable beds, spring planting, summer evenings, patio corners",
    ),
    "music": (
        "acoustic, electric, vintage, resonant, warm, studio, tuned, handcrafted",
        "spruce, mahogany, rosewood, maple, brass, nickel",
        "guitar, ukulele, drum pad, violin, keyboard, microphone, amplifier, strings",
        "a bright tone, low action, a solid top, a clear condenser, built in effects, "
        "weighted keys, a padded gig bag, a steady sustain",
        "beginners, live gigs, home recording, band practice, quiet evenings",
    ),
    "pets": (
        "chewy, orthopedic, calming, grain free, washable, interactive, sturdy, cozy",
        "rope, rubber, canvas, sherpa, chicken, salmon",
        "dog bed, cat tree, leash, chew toy, litter box, kibble, collar, aquarium",
        "a memory foam base, reflective stitching, real meat protein, a sisal post, "
        "odour control, a quick release buckle, a squeaker, a filter pump",
        "puppies, senior dogs, indoor cats, long walks, small apartments",
    ),
    "home": (
        "minimalist, scandinavian, plush, ambient, modular, handwoven, vintage, airy",
        "oak, velvet, jute, marble, rattan, ceramic",
        "lamp, rug, cushion, bookshelf, vase, throw blanket, mirror, curtains",
        "dimmable warm light, a hand knotted pile, hidden storage, a brushed finish, "
        "blackout lining, a removable cover, wall mounting, soft tassels",
        "living rooms, reading nooks, small bedrooms, entryways, guest rooms",
    ),
    "grocery": (
        "fresh, roasted, organic, spicy, artisan, wholesome, smoked, sweet",
        "arabica, oat, almond, basmati, olive, cocoa",
        "coffee beans, granola, pasta, olive oil, honey, chocolate bar, tea tin, hot sauce",
        "single origin beans, whole grains, cold pressed oil, raw wildflower honey, "
        "dark cocoa, chili heat, loose leaf blends, no added sugar",
        "breakfast, quick lunches, slow sundays, snacking, dinner parties",
    ),
}
CATEGORIES: Final = tuple(_WORDS)
_EVENTS: Final = ("view", "cart", "buy")
_FUNNEL_SECONDS: Final = 90  # a cart comes at most 45 s after its view, a buy 45 s after the cart


class SyntheticConfig(BaseModel):
    """Size and behaviour of the synthetic shop; the same config always gives the same data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_users: int = Field(default=5_000, ge=1)
    n_items: int = Field(default=2_500, ge=1)
    n_interactions: int = Field(default=200_000, ge=1)  # target number of events
    n_categories: int = Field(default=10, ge=1, le=len(CATEGORIES))
    n_factors: int = Field(default=16, ge=1)
    days: int = Field(default=90, ge=1)
    seed: int = 0
    start_time: int = 1_700_000_000  # unix seconds of the first day
    popularity_exponent: float = Field(default=0.8, ge=0)  # Zipf: weight = rank ** -exponent
    taste_concentration: float = Field(default=0.2, gt=0)  # Dirichlet alpha; small = focused
    drift: float = Field(default=0.3, ge=0, le=1)  # share of the taste replaced by the last day
    sharpness: float = Field(default=8.0, ge=0)  # weight of the latent factor match in choices
    session_length: float = Field(default=6.0, ge=1)  # mean views per session
    session_focus: float = Field(default=0.85, ge=0, le=1)  # views in the session's category
    candidates: int = Field(default=20, ge=1)  # items a user weighs before one view
    cart_rate: float = Field(default=0.15, ge=0, le=0.5)  # mean P(cart | view)
    buy_rate: float = Field(default=0.4, ge=0, le=0.5)  # mean P(buy | cart)
    with_ratings: bool = False  # add a 1-5 rating per event (for rating prediction models)

    @model_validator(mode="after")
    def _every_category_has_items(self) -> SyntheticConfig:
        if self.n_items < self.n_categories:
            raise ValueError(f"n_items={self.n_items} < n_categories={self.n_categories}")
        return self


PRESETS: Final[dict[str, SyntheticConfig]] = {
    "tiny": SyntheticConfig(
        n_users=300, n_items=150, n_interactions=12_000, n_categories=5, n_factors=8, days=30
    ),
    "small": SyntheticConfig(),
    "1m": SyntheticConfig(
        n_users=25_000, n_items=10_000, n_interactions=1_000_000, n_categories=12, days=180
    ),
}


def shop_dataset(scale: str = "small", seed: int = 0) -> RawData:
    """A preset synthetic shop: "tiny" (300 users, unit tests), "small" (5,000 users, ~200k
    events, the quickstart) or "1m" (25,000 users, ~1M events)."""
    if scale not in PRESETS:
        raise ConfigError(f"unknown synthetic scale {scale!r}; valid: {', '.join(PRESETS)}")
    return generate(PRESETS[scale].model_copy(update={"seed": seed}))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def _draw_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a (rows, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _ids(prefix: str, n: int) -> pl.Series:
    """Zero-padded string ids ("u0007"), so string order equals numeric order."""
    width = len(str(max(n - 1, 0)))
    return prefix + pl.Series(np.arange(n)).cast(pl.Utf8).str.zfill(width)


def _words(category: str, slot: int) -> list[str]:
    return _WORDS[category][slot].split(", ")


class _World:
    """The hidden state of the shop: tastes, item vectors, popularity and category blocks."""

    def __init__(self, config: SyntheticConfig, rng: np.random.Generator) -> None:
        n_cat, n_items, n_f = config.n_categories, config.n_items, config.n_factors
        self.categories = CATEGORIES[:n_cat]
        centres = rng.standard_normal((n_cat, n_f))
        sizes = rng.dirichlet(np.full(n_cat, 4.0))
        rest = rng.choice(n_cat, size=max(n_items - n_cat, 0), p=sizes)
        self.item_cat = rng.permutation(np.concatenate([np.arange(min(n_cat, n_items)), rest]))
        self.item_vec = _unit(
            centres[self.item_cat] + 0.8 * rng.standard_normal((n_items, n_f))
        ).astype(np.float32)
        rank = rng.permutation(n_items)
        self.popularity = (rank + 1.0) ** -config.popularity_exponent
        alpha = np.full(n_cat, config.taste_concentration)
        self.theta = (rng.dirichlet(alpha, config.n_users), rng.dirichlet(alpha, config.n_users))
        self.user_vec = tuple(
            _unit(t @ centres + 0.5 * rng.standard_normal((config.n_users, n_f))).astype(np.float32)
            for t in self.theta
        )
        self.activity = rng.lognormal(0.0, 1.0, config.n_users)
        # Items sorted by category; key = category + cumulative popularity share within it, so
        # searchsorted(key, c + u) draws an item of category c proportionally to popularity.
        self.by_cat = np.argsort(self.item_cat, kind="stable")
        cats = self.item_cat[self.by_cat]
        cum = np.cumsum(self.popularity[self.by_cat])
        starts = np.searchsorted(cats, np.arange(n_cat))
        ends = np.searchsorted(cats, np.arange(n_cat), side="right")
        before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
        total = cum[ends - 1] - before
        share = (cum - before[cats]) / total[cats]
        share[ends - 1] = 1.0
        self.cat_key = cats + share


def generate(config: SyntheticConfig | None = None) -> RawData:
    """Simulate the shop: interactions (user, item, time, view/cart/buy), items and users."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    world = _World(config, rng)
    views = _sessions(config, world, rng)
    interactions = _events(config, views, rng)
    return RawData(
        interactions=interactions,
        item_features=_item_features(config, world, rng),
        user_features=_user_features(config, world, rng),
        name="synthetic-shop",
        notes={"synthetic": config.model_dump()},
    )


def _sessions(
    config: SyntheticConfig, world: _World, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Sessions and their views: user, session start, time share, item and affinity per view."""
    n_users, span = config.n_users, config.days * 86_400
    per_view = 1.0 + config.cart_rate * (1.0 + config.buy_rate)
    n_sessions = max(1, round(config.n_interactions / per_view / config.session_length))
    share = world.activity / world.activity.sum()
    if n_sessions >= n_users:
        extra = rng.choice(n_users, size=n_sessions - n_users, p=share)
        sess_user = np.concatenate([np.arange(n_users), extra])
    else:
        sess_user = rng.choice(n_users, size=n_sessions, p=share)
    lengths = 1 + rng.poisson(config.session_length - 1, n_sessions)
    view_sess = np.repeat(np.arange(n_sessions), lengths)
    n_views = len(view_sess)
    # Views 100+ s apart (cart and buy follow within 90 s); a whole session fits in the span.
    cum = np.cumsum(100 + rng.exponential(150.0, n_views).astype(np.int64))
    last = np.cumsum(lengths) - 1
    offset = cum - cum[last - lengths + 1][view_sess]
    room = np.maximum(span - offset[last] - _FUNNEL_SECONDS, 1)
    sess_start = (rng.random(n_sessions) * room).astype(np.int64)
    sess_t = sess_start / span
    sess_theta = (1 - config.drift * sess_t)[:, None] * world.theta[0][sess_user] + (
        config.drift * sess_t
    )[:, None] * world.theta[1][sess_user]
    sess_cat = _draw_rows(sess_theta, rng)
    off_focus = rng.random(n_views) >= config.session_focus
    view_cat = sess_cat[view_sess]
    if off_focus.any():
        view_cat[off_focus] = _draw_rows(sess_theta[view_sess[off_focus]], rng)
    items = np.empty(n_views, dtype=np.int64)
    affinity = np.empty(n_views, dtype=np.float32)
    chunk = 65_536
    for lo in range(0, n_views, chunk):
        sl = slice(lo, min(lo + chunk, n_views))
        items[sl], affinity[sl] = _choose(
            config, world, rng, sess_user, sess_t, view_sess[sl], view_cat[sl]
        )
    return {
        "user": sess_user[view_sess],
        "time": sess_start[view_sess] + offset,
        "item": items,
        "affinity": affinity,
    }


def _choose(
    config: SyntheticConfig,
    world: _World,
    rng: np.random.Generator,
    sess_user: np.ndarray,
    sess_t: np.ndarray,
    view_sess: np.ndarray,
    view_cat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per view: draw candidates of the view's category by popularity, keep the best liked."""
    n, k = len(view_sess), config.candidates
    q = view_cat[:, None] + rng.random((n, k))
    pos = np.minimum(np.searchsorted(world.cat_key, q), len(world.cat_key) - 1)
    cand = world.by_cat[pos]  # (n, k)
    w = (config.drift * sess_t[view_sess])[:, None].astype(np.float32)
    users = sess_user[view_sess]
    taste = _unit((1 - w) * world.user_vec[0][users] + w * world.user_vec[1][users])  # (n, F)
    aff = config.sharpness * np.einsum("nf,nkf->nk", taste, world.item_vec[cand])  # (n, k)
    best = np.argmax(aff + rng.gumbel(size=(n, k)), axis=1)
    rows = np.arange(n)
    return cand[rows, best], aff[rows, best]


def _events(
    config: SyntheticConfig, views: dict[str, np.ndarray], rng: np.random.Generator
) -> pl.DataFrame:
    """Expand views into the view -> cart -> buy funnel and build the interactions table."""
    aff = views["affinity"]
    z = (aff - aff.mean()) / max(float(aff.std()), 1e-6)
    lift = 2.0 / (1.0 + np.exp(-1.5 * z))  # mean about 1: liked items convert more often
    n = len(aff)
    carted = rng.random(n) < config.cart_rate * lift
    bought = carted & (rng.random(n) < config.buy_rate * lift)
    cart_time = views["time"] + 5 + rng.integers(0, _FUNNEL_SECONDS // 2 - 5, n)
    buy_time = cart_time + 5 + rng.integers(0, _FUNNEL_SECONDS // 2 - 5, n)
    user = np.concatenate([views["user"], views["user"][carted], views["user"][bought]])
    item = np.concatenate([views["item"], views["item"][carted], views["item"][bought]])
    time = np.concatenate([views["time"], cart_time[carted], buy_time[bought]])
    event = np.concatenate(
        [np.zeros(n, np.int8), np.ones(carted.sum(), np.int8), np.full(bought.sum(), 2, np.int8)]
    )
    order = np.lexsort((event, user, time))
    columns = {
        C.user_id: _ids("u", config.n_users).gather(user[order]),
        C.item_id: _ids("i", config.n_items).gather(item[order]),
        C.timestamp: pl.Series(config.start_time + time[order], dtype=pl.Int64),
        C.event: pl.Series(np.array(_EVENTS)[event[order]], dtype=pl.Utf8),
    }
    if config.with_ratings:
        z_all = np.concatenate([z, z[carted], z[bought]])[order]
        stars = np.clip(np.round(3.0 + 1.2 * z_all + 0.6 * rng.standard_normal(len(order))), 1, 5)
        columns[C.rating] = pl.Series(stars, dtype=pl.Float64)
    return pl.DataFrame(columns)


def _pick(world: _World, slot: int, rng: np.random.Generator, count: int = 1) -> list[np.ndarray]:
    """Word indices per item for one word slot: words whose hidden vector fits the item best."""
    n_words = min(len(_words(c, slot)) for c in world.categories)
    word_vec = _unit(rng.standard_normal((len(world.categories), n_words, world.item_vec.shape[1])))
    fit = np.einsum("nf,nwf->nw", world.item_vec, word_vec[world.item_cat])
    noisy = 3.0 * fit + rng.gumbel(size=fit.shape)
    order = np.argsort(-noisy, axis=1)
    return [order[:, j] for j in range(count)]


def _item_features(
    config: SyntheticConfig, world: _World, rng: np.random.Generator
) -> pl.DataFrame:
    """Titles ("Cozy Wool Scarf") and descriptions from category words chosen by item vector."""
    (adj,) = _pick(world, 0, rng)
    (mat,) = _pick(world, 1, rng)
    feat_a, feat_b = _pick(world, 3, rng, count=2)
    noun = rng.integers(0, 1 << 30, config.n_items)
    use = rng.integers(0, 1 << 30, config.n_items)
    choices = {
        "adj": (0, adj),
        "mat": (1, mat),
        "noun": (2, noun),
        "feat_a": (3, feat_a),
        "feat_b": (3, feat_b),
        "use": (4, use),
    }
    table: dict[str, list[str]] = {}
    for key, (slot, idx) in choices.items():
        lists = [_words(c, slot) for c in world.categories]
        lens = np.array([len(lst) for lst in lists])
        padded = np.array([lst + [""] * (lens.max() - len(lst)) for lst in lists], dtype=object)
        table[key] = padded[world.item_cat, idx % lens[world.item_cat]].tolist()
    table[_CATEGORY] = np.asarray(world.categories, dtype=object)[world.item_cat].tolist()
    article = (
        pl.when(pl.col("adj").str.contains("^[aeiou]")).then(pl.lit("An")).otherwise(pl.lit("A"))
    )
    return pl.DataFrame(table).select(
        _ids("i", config.n_items).alias(C.item_id),
        pl.format("{} {} {}", "adj", "mat", "noun").str.to_titlecase().alias(C.title),
        pl.format(
            "{} {} {} in {} with {} and {}, made for {}.",
            article,
            *("adj", "noun", "mat", "feat_a", "feat_b", "use"),
        ).alias(C.text),
        pl.concat_list(_CATEGORY).alias(C.categories),
    )


def _user_features(
    config: SyntheticConfig, world: _World, rng: np.random.Generator
) -> pl.DataFrame:
    """A noisy segment per user: the first-taste top category for 70% of users, else random."""
    top = world.theta[0].argmax(axis=1)
    noise = rng.random(config.n_users) >= 0.7
    top[noise] = rng.integers(0, len(world.categories), int(noise.sum()))
    segments = np.asarray(world.categories, dtype=object)[top]
    return pl.DataFrame(
        {C.user_id: _ids("u", config.n_users), SEGMENT: pl.Series(segments.tolist(), dtype=pl.Utf8)}
    )
