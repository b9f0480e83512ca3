-- Admin price overrides (USD per million tokens, kept as nano-dollars per
-- million tokens so that sums stay exact).
CREATE TABLE price_overrides (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    input_nanos INTEGER NOT NULL,
    output_nanos INTEGER NOT NULL,
    cached_input_nanos INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (provider, model)
);
