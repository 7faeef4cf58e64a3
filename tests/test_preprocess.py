import numpy as np
import pandas as pd
import pytest

from xgbflow import dataset, preprocess
from xgbflow.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def synthetic(small_dataset):
    return dataset.read_dataset(str(small_dataset))[:2]


def test_split_is_disjoint_stratified_and_seeded(synthetic):
    table, schema = synthetic

    splits = preprocess.split_dataset(table, schema, seed=3)
    again = preprocess.split_dataset(table, schema, seed=3)

    indexes = [set(frame.index) for _, frame in splits.items()]
    assert sum(map(len, indexes)) == len(table)
    assert not indexes[0] & indexes[1]
    assert not indexes[0] & indexes[2]
    assert not indexes[1] & indexes[2]
    overall = table[schema.target].mean()
    for _, frame in splits.items():
        assert frame[schema.target].mean() == pytest.approx(overall, abs=0.01)
    assert splits.test.index.equals(again.test.index)


@pytest.mark.parametrize(
    ("validation_size", "test_size"), [(0, 0.2), (0.5, 0.45), (0.2, 1.2)]
)
def test_split_sizes_are_checked(synthetic, validation_size, test_size):
    table, schema = synthetic

    with pytest.raises(ConfigError, match="validation_size"):
        preprocess.split_dataset(
            table, schema, validation_size=validation_size, test_size=test_size
        )


def test_a_class_too_small_to_stratify_is_refused(synthetic):
    table, schema = synthetic
    table = table[table[schema.target] == 0].copy()
    table.loc[table.index[:2], schema.target] = 1

    with pytest.raises(DataError, match="fewer than 3 rows"):
        preprocess.split_dataset(table, schema)


def test_statistics_come_from_the_training_split_only(trained):
    schema, splits = trained.schema, trained.splits
    fitted = trained.model.pipeline.named_steps["preprocess"]
    numeric = fitted.named_transformers_["numeric"].named_steps
    train_frame = dataset.to_model_frame(splits.train, schema)
    everything = dataset.to_model_frame(trained.table, schema)

    medians = train_frame[list(schema.numeric)].median().to_numpy()
    np.testing.assert_allclose(numeric["impute"].statistics_, medians, rtol=1e-6)
    means = (
        train_frame[list(schema.numeric)]
        .fillna(dict(zip(schema.numeric, medians, strict=True)))
        .mean()
    )
    np.testing.assert_allclose(numeric["scale"].mean_, means, rtol=1e-5)
    # The whole table's medians differ somewhere: the check above can tell them apart.
    assert not np.allclose(everything[list(schema.numeric)].median(), medians)
    encoder = fitted.named_transformers_["categorical"]
    for column, categories in zip(schema.categorical, encoder.categories_, strict=True):
        assert set(categories) == set(train_frame[column])


def test_scales_are_powers_of_two(trained):
    fitted = trained.model.pipeline.named_steps["preprocess"]
    scale = fitted.named_transformers_["numeric"].named_steps["scale"].scale_

    assert np.array_equal(np.exp2(np.round(np.log2(scale))), scale)


def test_unseen_and_missing_categories(trained):
    schema = trained.schema
    fitted = trained.model.pipeline.named_steps["preprocess"]
    rows = trained.splits.test.head(2).copy()
    rows["region"] = ["atlantis", None]

    out = pd.DataFrame(
        fitted.transform(dataset.to_model_frame(rows, schema)),
        columns=fitted.get_feature_names_out(),
    )

    region = [c for c in out.columns if c.startswith("categorical__region_")]
    assert out.loc[0, region].sum() == 0  # unseen: none of the known categories
    assert out.loc[1, "categorical__region_"] == 1  # missing: its own category


def test_ratio_features_mark_zero_denominators_missing():
    ratios = preprocess.RatioFeatures((0, 1), (2, 2), ("a_to_c", "b_to_c")).fit(
        np.zeros((1, 3))
    )

    out = ratios.transform(np.array([[1.0, 2.0, 4.0], [1.0, np.nan, 0.0]]))

    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], [0.25, 0.5])
    assert np.isnan(out[1]).all()


def test_ratios_only_for_columns_the_schema_has():
    schema = dataset.FeatureSchema("y", ("debt", "income", "x"), ())

    assert preprocess.ratio_pairs(schema) == [("debt", "income")]


def test_transform_table_names_every_model_input_and_keeps_the_index(trained):
    schema = trained.schema
    fitted = trained.model.pipeline.named_steps["preprocess"]
    rows = trained.splits.test.head(3).copy()
    rows.loc[rows.index[0], "income"] = np.nan
    median = (
        fitted.named_transformers_["numeric"]
        .named_steps["impute"]
        .statistics_[schema.numeric.index("income")]
    )
    rows.loc[rows.index[1], "income"] = median

    out = preprocess.transform_table(fitted, rows, schema)

    assert list(out.columns) == list(fitted.get_feature_names_out())
    assert out.columns[0] == f"numeric__{schema.numeric[0]}"
    assert "derived__debt_to_income" in out.columns
    assert out.index.equals(rows.index)
    # A gap and the training median become the same feature value.
    assert out["numeric__income"].iloc[0] == out["numeric__income"].iloc[1]
