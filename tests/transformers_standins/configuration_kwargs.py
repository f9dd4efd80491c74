"""Stand-in for transformers' `tests/utils/test_configuration_utils.py`, which the sdist does not ship.

`ConfigTester.check_config_arguments_init` builds a config from `config_common_kwargs` (every common
`PreTrainedConfig` argument, each set to a value other than its default) and checks each is kept. It returns early for
configs with sub-configs, as `DRLConfig` is, so these values are not read for DRL; they are the non-default values of
the common arguments of the installed `PreTrainedConfig`, so the check is meaningful wherever it does run.
"""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["DRLModel"],
    "id2label": {0: "match"},
    "label2id": {"match": 0},
    "problem_type": "regression",
}
