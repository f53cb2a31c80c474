"""Deduplicate a `rapport bench match-data` file with Splink 5 on DuckDB, with the same
preprocessing, blocking rules and comparisons as bench/splink/settings.toml gives Rapport,
and print one JSON line of timings and pairwise precision, recall and F1 at the threshold.

Usage: python splink_dedupe.py DATA_DIR OUT_DIR [--threshold 0.9] [--threads 2]

Timed end to end: reading the CSV, preprocessing, training (prior from deterministic rules,
u by random sampling, m by EM in two sessions), scoring every candidate pair, clustering at
the threshold, writing links and clusters as CSV. Evaluation against truth.csv comes after the
clock stops, as it does for Rapport (whose report times it separately).
"""

import argparse
import json
import logging
import os
import time

import duckdb
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on


def clean(col: str) -> str:
    # The same folding as Rapport's `clean` preprocessing for ASCII text: lowercase, drop
    # apostrophes and dots, other punctuation to spaces, whitespace collapsed and trimmed.
    return (
        "nullif(trim(regexp_replace(regexp_replace(regexp_replace(lower({c}), '[''.]', '', 'g'),"
        " '[^a-z0-9\\s]', ' ', 'g'), '\\s+', ' ', 'g')), '')"
    ).format(c=col)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--u-pairs", type=float, default=1e6)
    ap.add_argument("--model-out", help="also save the trained model as JSON and every scored pair next to it (after the clock)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    logging.disable(logging.WARNING)

    started = time.perf_counter()
    con = duckdb.connect()
    def sql(text):
        # Fetch every result so the connection is free for Splink's next statement.
        return con.execute(text).fetchall()

    sql(f"SET threads = {args.threads}")
    records = os.path.join(args.data_dir, "records.csv")
    sql(
        f"""
        CREATE TABLE people AS
        SELECT id AS unique_id,
               {clean('first_name')} AS first_name,
               {clean('last_name')} AS last_name,
               nullif(trim(dob), '') AS dob,
               nullif(lower(trim(email)), '') AS email,
               {clean('email')} AS email_key,
               nullif(regexp_replace(phone, '[^0-9]', '', 'g'), '') AS phone,
               {clean('address')} AS address,
               {clean('postcode')} AS postcode,
               {clean('device_id')} AS device_id
        FROM read_csv('{records}', header = true, all_varchar = true)
        """
    )
    db_api = DuckDBAPI(con)
    people = db_api.register("people")
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("email_key"),
            block_on("phone"),
            block_on("last_name", "dob"),
            block_on("substr(first_name, 1, 3)", "postcode"),
            block_on("dob", "postcode"),
        ],
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("last_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.DamerauLevenshteinAtThresholds("dob", [1, 2]),
            cl.LevenshteinAtThresholds("email", [2]),
            cl.LevenshteinAtThresholds("phone", [1]),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.75]),
            cl.LevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("device_id"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(people, settings, log_level=None)
    t_train = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email_key", "first_name"), block_on("phone", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=args.u_pairs, seed=42)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email_key"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("last_name", "dob")
    )
    t_predict = time.perf_counter()
    predictions = linker.inference.predict()
    candidate_pairs = sql(
        f"SELECT count(*) FROM {predictions.physical_name}"
    )[0][0]
    t_cluster = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=args.threshold
    )
    links_path = os.path.join(args.out_dir, "splink_links.csv")
    clusters_path = os.path.join(args.out_dir, "splink_clusters.csv")
    sql(
        f"""COPY (SELECT unique_id_l, unique_id_r, match_probability, match_weight
                  FROM {predictions.physical_name}
                  WHERE match_probability >= {args.threshold}) TO '{links_path}' (HEADER)"""
    )
    sql(
        f"COPY (SELECT unique_id AS record_id, cluster_id FROM {clusters.physical_name}) "
        f"TO '{clusters_path}' (HEADER)"
    )
    finished = time.perf_counter()

    if args.model_out:
        linker.misc.save_model_to_json(args.model_out, overwrite=True)
        sql(
            f"""COPY (SELECT unique_id_l, unique_id_r, match_probability, match_weight
                      FROM {predictions.physical_name})
                TO '{args.model_out}.pairs.csv' (HEADER)"""
        )
    truth = os.path.join(args.data_dir, "truth.csv")
    sql(
        f"CREATE TABLE truth AS SELECT * FROM read_csv('{truth}', header = true, all_varchar = true)"
    )
    sql(
        """CREATE TABLE truth_pairs AS
           SELECT least(a.record_id, b.record_id) AS l, greatest(a.record_id, b.record_id) AS r
           FROM truth a JOIN truth b ON a.cluster_id = b.cluster_id AND a.record_id < b.record_id"""
    )
    sql(
        f"""CREATE TABLE predicted AS
            SELECT DISTINCT least(unique_id_l, unique_id_r) AS l, greatest(unique_id_l, unique_id_r) AS r
            FROM {predictions.physical_name} WHERE match_probability >= {args.threshold}"""
    )
    n_true = sql("SELECT count(*) FROM truth_pairs")[0][0]
    n_pred = sql("SELECT count(*) FROM predicted")[0][0]
    tp = sql("SELECT count(*) FROM predicted JOIN truth_pairs USING (l, r)")[0][0]
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(
        json.dumps(
            {
                "tool": f"splink {splink.__version__} duckdb {duckdb.__version__}",
                "threads": args.threads,
                "candidate_pairs": candidate_pairs,
                "links": n_pred,
                "true_pairs": n_true,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "load_s": t_train - started,
                "train_s": t_predict - t_train,
                "predict_s": t_cluster - t_predict,
                "cluster_and_write_s": finished - t_cluster,
                "end_to_end_s": finished - started,
                "pairs_per_s_per_core": candidate_pairs / (t_cluster - t_predict) / args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
