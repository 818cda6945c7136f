"""Evaluation data: where it lives, how each file format is parsed, and how it is checked and downloaded.

The layout is the one of ``shared/data`` (see its README): SentEval's file names, with the SentEval-processed
(tokenized) STS files under ``sts/STS1x`` and the original SemEval release under ``sts/raw/STS1x``. Parsers
follow SentEval's readers (so counts and fold order match its numbers) but fail loudly, with ``file:line``, on
anything malformed instead of silently skipping it.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from isbert.errors import InputError, IsbertError
from isbert.io import allow_long_csv_fields

ENV_VAR = "ISBERT_DATA_DIR"
"""Environment variable naming the data folder; ``--data-dir`` overrides it."""

DEFAULT_DATA_DIR = Path("~/.cache/isbert/data")
"""Where the data is looked for when neither ``--data-dir`` nor ``ISBERT_DATA_DIR`` is given."""

TextVariant = Literal["senteval", "raw"]

STS_SUBSETS: dict[str, dict[str, int]] = {
    "STS12": {
        "MSRpar": 750,
        "MSRvid": 750,
        "SMTeuroparl": 459,
        "surprise.OnWN": 750,
        "surprise.SMTnews": 399,
    },
    "STS13": {"FNWN": 189, "headlines": 750, "OnWN": 561},
    "STS14": {
        "deft-forum": 450,
        "deft-news": 300,
        "headlines": 750,
        "images": 750,
        "OnWN": 750,
        "tweet-news": 750,
    },
    "STS15": {"answers-forums": 375, "answers-students": 750, "belief": 375, "headlines": 750, "images": 750},
    "STS16": {
        "answer-answer": 254,
        "headlines": 249,
        "plagiarism": 230,
        "postediting": 244,
        "question-question": 209,
    },
}
"""SemEval STS sub-datasets and their number of *scored* pairs (SentEval: 3108/1500/3750/3000/1186)."""

STS_TASKS = (*STS_SUBSETS, "STSBenchmark", "SICK-R")
TRANSFER_TASKS = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
ALL_TASKS = STS_TASKS + TRANSFER_TASKS
GROUPS: dict[str, tuple[str, ...]] = {"sts": STS_TASKS, "transfer": TRANSFER_TASKS, "all": ALL_TASKS}
ALIASES = {"sst": "SST2", "sst-2": "SST2", "stsb": "STSBenchmark", "sts-b": "STSBenchmark", "sick": "SICK-R"}

EXPECTED_COUNTS: dict[str, int] = {
    "STSBenchmark": 1379,
    "SICK-R": 4927,
    "MR": 10662,
    "CR": 3775,
    "SUBJ": 10000,
    "MPQA": 10606,
    "SST2/train": 67349,
    "SST2/dev": 872,
    "SST2/test": 1821,
    "TREC/train": 5452,
    "TREC/test": 500,
    "MRPC/train": 4076,
    "MRPC/test": 1725,
}
"""Known sizes (pairs or sentences) of every evaluation split; a different count is an error."""

TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
UNLABELED_FILE = "unlabeled/nli_sentences.snli_dev_test.txt"
"""Default unlabeled sentences for fitting the whitening baseline."""

_KNOWN_SHA256SUMS = """
2b8aa806658d6fc23c6824c83776c2d4fee7556000817b5ec0f982861413b7d0  sts/SICK/SICK_test_annotated.txt
4c9aa1bb3c5bbf732520fe35b23c121739472a38eb47e7d5336e6df51896be02  sts/SICK/senteval/SICK_test_annotated.txt
5526be59228bc34ccb3cb6f1f56c0d7278d3419b8886713ae016fd92b151f19c  sts/STS12/STS.gs.MSRpar.txt
9c6096c6bcfb0144c8bbddb00900ca9198c88498630cd0c8f08d18365f1d7150  sts/STS12/STS.gs.MSRvid.txt
708530c4d006d06881f3289fce35d624d7efe562dcf0fe5f8aa0eec3a135f6d4  sts/STS12/STS.gs.SMTeuroparl.txt
088d8ca22c0aa406e4a5d2e6e308a4f38b482b8e736c2445a38ffb6e4c4fb4fd  sts/STS12/STS.gs.surprise.OnWN.txt
aa6dfc868db333c43dc59be14d46fa6587c7ebddc0d497e717f647bf35121cf1  sts/STS12/STS.gs.surprise.SMTnews.txt
21c0c6cc32f68f69d672dfae0f86935cdc2627bae4941381692941aa9320f8c4  sts/STS12/STS.input.MSRpar.txt
c4a92a3645744f77d1cda9f2af7da5d11e807ae296f6a20fe5930403fb9c4dfe  sts/STS12/STS.input.MSRvid.txt
05acf33c0fcb592347f49e279137a17e0244d7b0d37cc113134320a5d3f586e1  sts/STS12/STS.input.SMTeuroparl.txt
e605c67de4b7cee2c5629239d209e2845920f475ebd0468bdcf03d8da2ffa9cf  sts/STS12/STS.input.surprise.OnWN.txt
cc4a0b9a1355c5680a8a37c02f2d08e35f95754b9f89a2a4a05088ee5ff57ffe  sts/STS12/STS.input.surprise.SMTnews.txt
8ca95b7228119578e2007839cf7969f22c4f1fd41fd610c4b7f9683072d98066  sts/STS13/STS.gs.FNWN.txt
0cd497aaddb00a2fb6db25f77bccfc09e8aa012e11549b81b434bab1a27ad954  sts/STS13/STS.gs.OnWN.txt
f49f64089011436dd296ef384c07160219406feef7dc4b9fa2af52a519f32bc6  sts/STS13/STS.gs.headlines.txt
a20cb41a33a528f3c089c94ef24da8eb5e26ed594937cf6fa90f3d1c79d6c53c  sts/STS13/STS.input.FNWN.txt
cb74993eef23cfa2c03da7e5a08c62e50c9baafae0fa9ba0bb5a09d8e7d2be65  sts/STS13/STS.input.OnWN.txt
637f3b4afdc8d1cc789e91a4d7217efff30e503c34a872d93e8b27e7b1136cb7  sts/STS13/STS.input.headlines.txt
1c80147df270ea4cfce14a47ed29f8a2f10d5dc016d02836077fd786ff7f535b  sts/STS14/STS.gs.OnWN.txt
ba6dc76696b5c93985590a325b4d142449932cdf0d715b2bab1b1743fe3c488c  sts/STS14/STS.gs.deft-forum.txt
105c5b333abd50c274efb4dae9e3e0dab36ed63eee780cfb49955b1586bd62f2  sts/STS14/STS.gs.deft-news.txt
f243c34647255cd0b994565ed4f58dd31506e7d9c9d6250d1a6dd14095625832  sts/STS14/STS.gs.headlines.txt
fc994ebacc7074c332626fa9e29542d7340a48a3cdb999b47cdb59c378523a62  sts/STS14/STS.gs.images.txt
0098c644bfeaa2d511a8297b1940771865900c372c9dd49a62726dc5ec02c9a3  sts/STS14/STS.gs.tweet-news.txt
8cd2333328d17e3212afa2d43dd934c5521e3fd35fc786b992dc7864f9d34f8f  sts/STS14/STS.input.OnWN.txt
b39579e59c7b9f4063545c3d4643f8db16dc060cd0a35447ef56ff0aabec9d83  sts/STS14/STS.input.deft-forum.txt
cc450dcd9228211c1a311de1ff28199f166dce6f7fc81dcb5ce968a3a8a80d2d  sts/STS14/STS.input.deft-news.txt
2ed0ea55d196cdbb440ed428eb1846dcb43486a692aafb22b3bc5c14c44407c8  sts/STS14/STS.input.headlines.txt
295fc99f8a9215c330b36a08bc1ff3e428f10057be5bb915262111494b3616e2  sts/STS14/STS.input.images.txt
b25b3768762aa7cdcd89f2a25ce5049de7e4cd51b138227c3a31092ae8e2b5f5  sts/STS14/STS.input.tweet-news.txt
1644301a7540e5484da285002e9269062852efb2272be614cad99c9530f6a102  sts/STS15/STS.gs.answers-forums.txt
028db213140f8c7aef7497c4ae38b6380938f20359852231669c83dce11c3701  sts/STS15/STS.gs.answers-students.txt
5736192faaccbdbecd0ef6b73ec04b24115cd2e48d55dc3b1b170da3d2a81c75  sts/STS15/STS.gs.belief.txt
e8e432f769c8a94ddb62ae3343890ac24a9dd78a116d56c707313bc59413dd56  sts/STS15/STS.gs.headlines.txt
ed8878209098c77ca7f02ac413d3fd698f92ad3425999555e50fda89fc46012a  sts/STS15/STS.gs.images.txt
b8f1bc125559adbb3ac5b33206472b217c12621c3a6b5a8575da47dc0b536fc4  sts/STS15/STS.input.answers-forums.txt
4893f736e84cea176c39c882250f6513d5bbcfa6ebe8d3ffabcef6056d0471a7  sts/STS15/STS.input.answers-students.txt
a54ec7af1924c900d8474586abae465819d2c03c73561aa2e76e7fa5e836faff  sts/STS15/STS.input.belief.txt
85d90b0f8f258a47758808d382188ba2ee7b1adbbf84feb776afad0e4691d5d1  sts/STS15/STS.input.headlines.txt
0dac9494186838a8f4dfbb4ee290fec8d7581cf84a33d615c522700b3b50e0d6  sts/STS15/STS.input.images.txt
332efd741b0cb247d20dd2a6cec854360c921c7e6b395f328f562d8d26057214  sts/STS16/STS.gs.answer-answer.txt
01e33a95996201a6e81e3cce9eda0f15048b77613ea64dce2929bb35479f7d85  sts/STS16/STS.gs.headlines.txt
29984944a91aaff484f2b2e5d4d434fc8a6f5ef6f578a880cccd2786f5142fdc  sts/STS16/STS.gs.plagiarism.txt
81947ed9dbe7f85b7bd249df68ed5c7b2f16f06390ad568eb5554b1e26bc5577  sts/STS16/STS.gs.postediting.txt
cf9ebf9d140191f73620cda0560947ad9283c910735d0d541b8a401a5e64afb0  sts/STS16/STS.gs.question-question.txt
ebbffced7d4630755e61d4dfe4d82121198965a14b9f5734b5abedb961f0725c  sts/STS16/STS.input.answer-answer.txt
705c3e82fb85fa3b6706a481b790e1030304ddc9c72d39e126693ed44b258ba6  sts/STS16/STS.input.headlines.txt
dd4ca54d1dfcd7d1cabe67f0de98cde23f4c1696ecc0003afbecae1274305d63  sts/STS16/STS.input.plagiarism.txt
9b455d8da1d1bae692d038da1d431827d23bfec04c64b109efc3b6b620fd422f  sts/STS16/STS.input.postediting.txt
58920c7da7dbc1b860609310782d88b7457d599c90a226819b5880262dd7f58a  sts/STS16/STS.input.question-question.txt
4cde2a19c9b7232c9ce92a89e5afd99805c8f66ba432a7824e0a5bad1a0a0ea0  sts/STSBenchmark/senteval/sts-test.csv
5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234  sts/STSBenchmark/sts-dev.csv
affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a  sts/STSBenchmark/sts-test.csv
0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82  sts/STSBenchmark/sts-train.csv
5526be59228bc34ccb3cb6f1f56c0d7278d3419b8886713ae016fd92b151f19c  sts/raw/STS12/STS.gs.MSRpar.txt
9c6096c6bcfb0144c8bbddb00900ca9198c88498630cd0c8f08d18365f1d7150  sts/raw/STS12/STS.gs.MSRvid.txt
708530c4d006d06881f3289fce35d624d7efe562dcf0fe5f8aa0eec3a135f6d4  sts/raw/STS12/STS.gs.SMTeuroparl.txt
088d8ca22c0aa406e4a5d2e6e308a4f38b482b8e736c2445a38ffb6e4c4fb4fd  sts/raw/STS12/STS.gs.surprise.OnWN.txt
aa6dfc868db333c43dc59be14d46fa6587c7ebddc0d497e717f647bf35121cf1  sts/raw/STS12/STS.gs.surprise.SMTnews.txt
76bf7089f9e7c05732163a227b3ce679512554513eb783f2548b07d659bd733d  sts/raw/STS12/STS.input.MSRpar.txt
476d14034a241f71b832e4ae557dd6cdbe265b57c915570a2583f93b4456948d  sts/raw/STS12/STS.input.MSRvid.txt
dd31dbb6e7eef8a0d00347fe012f7cf372943167e30f60f6fb3b10219a41941f  sts/raw/STS12/STS.input.SMTeuroparl.txt
07ec7b91348aece0873b41f7fc4e76e9fddf05bdb82c048c98d92f5db0bec07d  sts/raw/STS12/STS.input.surprise.OnWN.txt
2788a98ef33c3b7b704ef4891fe863cfcf061338e8aa41cb737d0f137f3ba03c  sts/raw/STS12/STS.input.surprise.SMTnews.txt
8ca95b7228119578e2007839cf7969f22c4f1fd41fd610c4b7f9683072d98066  sts/raw/STS13/STS.gs.FNWN.txt
0cd497aaddb00a2fb6db25f77bccfc09e8aa012e11549b81b434bab1a27ad954  sts/raw/STS13/STS.gs.OnWN.txt
f49f64089011436dd296ef384c07160219406feef7dc4b9fa2af52a519f32bc6  sts/raw/STS13/STS.gs.headlines.txt
b48fc64cd85703ac6431f8ea6722f325fe9620fd4f33b3d5c24dd89c553e74bc  sts/raw/STS13/STS.input.FNWN.txt
127c66889627f26dc11864dc9be4ba1e4895ed60125985c755429ad588e4b9c8  sts/raw/STS13/STS.input.OnWN.txt
885e6149fff28a79591ba464c13626d03593b822c88c7c04b6564354d31c7561  sts/raw/STS13/STS.input.headlines.txt
1c80147df270ea4cfce14a47ed29f8a2f10d5dc016d02836077fd786ff7f535b  sts/raw/STS14/STS.gs.OnWN.txt
ba6dc76696b5c93985590a325b4d142449932cdf0d715b2bab1b1743fe3c488c  sts/raw/STS14/STS.gs.deft-forum.txt
105c5b333abd50c274efb4dae9e3e0dab36ed63eee780cfb49955b1586bd62f2  sts/raw/STS14/STS.gs.deft-news.txt
f243c34647255cd0b994565ed4f58dd31506e7d9c9d6250d1a6dd14095625832  sts/raw/STS14/STS.gs.headlines.txt
fc994ebacc7074c332626fa9e29542d7340a48a3cdb999b47cdb59c378523a62  sts/raw/STS14/STS.gs.images.txt
0098c644bfeaa2d511a8297b1940771865900c372c9dd49a62726dc5ec02c9a3  sts/raw/STS14/STS.gs.tweet-news.txt
a227d5fe1c1f729a52a0b39b5b36d3225e1bca3c278e7ed392cac2ecd3990f1c  sts/raw/STS14/STS.input.OnWN.txt
8b48aa15bb850e2827446f6e98cc3c5123ff283924b4571a409aa2fab73e35c6  sts/raw/STS14/STS.input.deft-forum.txt
92df5b8c48873cbfba36b73a77955fb965c9244776df9e9c2c4d2f6155bdeefe  sts/raw/STS14/STS.input.deft-news.txt
a19f84294325c62a2a403b59957196fd7737f86654ded0e04e0b54bc4a8bcf9e  sts/raw/STS14/STS.input.headlines.txt
cec1b3c08b0e4c88aeaf8dca047f5b28f4a8588eeef58475e0f16491d2bb7193  sts/raw/STS14/STS.input.images.txt
250d29ec9394e35443b2a73016ccc55e11b20939a3b8ee3bea9a858ba2f9adc0  sts/raw/STS14/STS.input.tweet-news.txt
1644301a7540e5484da285002e9269062852efb2272be614cad99c9530f6a102  sts/raw/STS15/STS.gs.answers-forums.txt
028db213140f8c7aef7497c4ae38b6380938f20359852231669c83dce11c3701  sts/raw/STS15/STS.gs.answers-students.txt
5736192faaccbdbecd0ef6b73ec04b24115cd2e48d55dc3b1b170da3d2a81c75  sts/raw/STS15/STS.gs.belief.txt
e8e432f769c8a94ddb62ae3343890ac24a9dd78a116d56c707313bc59413dd56  sts/raw/STS15/STS.gs.headlines.txt
ed8878209098c77ca7f02ac413d3fd698f92ad3425999555e50fda89fc46012a  sts/raw/STS15/STS.gs.images.txt
fe8e460a74e8e38704ac4e6ddcedec89fd6e51cd0467d6f4301b444b259688e1  sts/raw/STS15/STS.input.answers-forums.txt
16eedf46fb3b29822b275a0ddcff8e873a6eb4bafba244a17c4049ffc318d62a  sts/raw/STS15/STS.input.answers-students.txt
6e924a19fb1abbce01a8666f07766250b46a96c89272de8e5b01d0905bc61b79  sts/raw/STS15/STS.input.belief.txt
779c195c54b72282bd3c8ca1dbb09a4155a39b2acd13d5cf819d8555d717cf6a  sts/raw/STS15/STS.input.headlines.txt
6f332542a75bcd18ea1442fc129306f746cd7ade7010ea274e763bfca576cc47  sts/raw/STS15/STS.input.images.txt
332efd741b0cb247d20dd2a6cec854360c921c7e6b395f328f562d8d26057214  sts/raw/STS16/STS.gs.answer-answer.txt
01e33a95996201a6e81e3cce9eda0f15048b77613ea64dce2929bb35479f7d85  sts/raw/STS16/STS.gs.headlines.txt
29984944a91aaff484f2b2e5d4d434fc8a6f5ef6f578a880cccd2786f5142fdc  sts/raw/STS16/STS.gs.plagiarism.txt
81947ed9dbe7f85b7bd249df68ed5c7b2f16f06390ad568eb5554b1e26bc5577  sts/raw/STS16/STS.gs.postediting.txt
cf9ebf9d140191f73620cda0560947ad9283c910735d0d541b8a401a5e64afb0  sts/raw/STS16/STS.gs.question-question.txt
7daf2cd87751a0f8b754fe705bdb280c31591d9febf5b6fce9dcb10d3b8a72a7  sts/raw/STS16/STS.input.answer-answer.txt
ec8ee1124e71f4cc18c861f542fa8f32c86fef0703de31b0f7a02e22e935d992  sts/raw/STS16/STS.input.headlines.txt
6760cb210f4423262fd8962674e6668409690ce888bb1617659c6886cf004019  sts/raw/STS16/STS.input.plagiarism.txt
a8a66185877785307803c99a0899d65aefb062c4bf7689560b95d37bb0c05474  sts/raw/STS16/STS.input.postediting.txt
b7f95dead3d8c59fbaacbb135643c6ebd322682db6502fdb24d4ce83c9bf016d  sts/raw/STS16/STS.input.question-question.txt
ec94532766f6f962094841ab3bee2ad6f232f996c3756825a91e78bcc294750f  transfer/CR/custrev.neg
91a20a4ffeb5d38a39a4087bb247e16538aff21e7d621ae59738379f39f21732  transfer/CR/custrev.pos
8da6e035fa4cea02f0555091096b29a6b3995ff0adf41fad25008dcee066b79e  transfer/MPQA/mpqa.neg
7487dbb74c77383e60b292845495163a9e21fb70a4fdacdda933413e43163f0d  transfer/MPQA/mpqa.pos
c4ac36eaa8adc8ee31c31f69594bfbe68d83ef5b6db53f1f19b28c0be52f3999  transfer/MR/rt-polarity.neg
34e5b0da2d491e46b700b00afe735aaae0962bcfe4f7f22b2d8077e714fa370f  transfer/MR/rt-polarity.pos
a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784  transfer/MRPC/msr_paraphrase_test.txt
60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89  transfer/MRPC/msr_paraphrase_train.txt
9a6c7403b71a9b762158387afe4431253ae10cdfb2319b5275289f3766f48291  transfer/SST/binary/sentiment-dev
4fefd1cd67526cf87ebc7fafc3afc21cc7cfa6ae53b45e74f77f9456e3c62752  transfer/SST/binary/sentiment-test
10a92a297ec38e262386e5a2713b4bc70e5d18ced88b7f54bd171a26e5b34ab5  transfer/SST/binary/sentiment-train
d8ccd43f1674f1c17e4ab717564e3561cfb719b0db4cfb19e5677427c68ff8a1  transfer/SUBJ/subj.objective
274c2ffe59c204dc4df779848561786f59a98cc20dda3cfdd7d9f76a4f730710  transfer/SUBJ/subj.subjective
86ad53c8fc9d397ab2f4be7c967d8efb470b260140557d3e57afad69d1b88b76  transfer/TREC/TREC_10.label
8bd6e79493f43bbd22c364587366a1dced54e1e31259eaa92721a0f526031116  transfer/TREC/train_5500.label
0df27586ad5b5d2a3feb2bdcaa9185a380e26a980817876ad4857f7d0a41260d  unlabeled/nli_sentences.snli_dev_test.txt
"""

KNOWN_SHA256: dict[str, str] = {
    line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in _KNOWN_SHA256SUMS.strip().splitlines()
}
"""sha256 of the evaluation files in the reference copy (shared/data), for `isbert data check`."""

GET_DATA_HINT = (
    f"get it with `isbert data download --data-dir DIR` (original public sources; see docs/evaluation.md), "
    f"then pass --data-dir DIR or set {ENV_VAR}"
)


# ----------------------------------------------------------------------------------------------------
# containers


@dataclass
class StsSubset:
    """The scored pairs of one STS sub-dataset (or of a whole single-file task such as STSb)."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class StsTask:
    name: str
    subsets: dict[str, StsSubset]
    files: list[Path] = field(default_factory=list)

    def sentences(self) -> Iterable[str]:
        for subset in self.subsets.values():
            yield from subset.sentences1
            yield from subset.sentences2


@dataclass
class LabeledSplit:
    """Sentences (or sentence pairs, for MRPC) with integer labels."""

    texts: list[str]
    labels: np.ndarray
    texts_b: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TransferTask:
    """A SentEval transfer task; ``protocol`` picks SentEval's classifier: ``cv`` (inner k-fold,
    MR/CR/SUBJ/MPQA), ``dev`` (train/dev/test split, SST-2) or ``kfold`` (train/test with k-fold C
    selection, TREC/MRPC)."""

    name: str
    protocol: Literal["cv", "dev", "kfold"]
    splits: dict[str, LabeledSplit]
    files: list[Path] = field(default_factory=list)

    def sentences(self) -> Iterable[str]:
        for split in self.splits.values():
            yield from split.texts
            if split.texts_b is not None:
                yield from split.texts_b


# ----------------------------------------------------------------------------------------------------
# locating the data


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir``, else ``$ISBERT_DATA_DIR``, else the default folder; if missing, say how to get it."""
    if data_dir is not None and str(data_dir) != "":
        path, origin = Path(data_dir).expanduser(), "--data-dir"
    elif os.environ.get(ENV_VAR):
        path, origin = Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    else:
        path, origin = DEFAULT_DATA_DIR.expanduser(), "the default location"
    if not path.is_dir():
        raise IsbertError(f"data directory not found: {path} (from {origin}); {GET_DATA_HINT}")
    return path


def canonical_task_names(spec: str | Iterable[str]) -> list[str]:
    """Expand comma-separated, case-insensitive task names and groups (``sts``, ``transfer``, ``all``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    lookup = {name.lower(): name for name in ALL_TASKS} | ALIASES
    names: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        key = item.lower()
        if key in GROUPS:
            found: tuple[str, ...] = GROUPS[key]
        elif key in lookup:
            found = (lookup[key],)
        else:
            valid = ", ".join([*GROUPS, *ALL_TASKS])
            raise IsbertError(f"unknown task '{item}'; valid tasks and groups (case-insensitive): {valid}")
        names.extend(name for name in found if name not in names)
    if not names:
        raise IsbertError("no task given; valid tasks and groups: " + ", ".join([*GROUPS, *ALL_TASKS]))
    return names


def task_files(task: str, text: TextVariant = "senteval") -> list[str]:
    """Files (relative to the data folder) that a task reads."""
    if task in STS_SUBSETS:
        base = f"sts/{task}" if text == "senteval" else f"sts/raw/{task}"
        return [f"{base}/STS.{kind}.{sub}.txt" for sub in STS_SUBSETS[task] for kind in ("input", "gs")]
    sub = "senteval/" if text == "senteval" else ""
    fixed = {
        "STSBenchmark": [f"sts/STSBenchmark/{sub}sts-test.csv"],
        "SICK-R": [f"sts/SICK/{sub}SICK_test_annotated.txt"],
        "MR": ["transfer/MR/rt-polarity.pos", "transfer/MR/rt-polarity.neg"],
        "CR": ["transfer/CR/custrev.pos", "transfer/CR/custrev.neg"],
        "SUBJ": ["transfer/SUBJ/subj.subjective", "transfer/SUBJ/subj.objective"],
        "MPQA": ["transfer/MPQA/mpqa.pos", "transfer/MPQA/mpqa.neg"],
        "SST2": [f"transfer/SST/binary/sentiment-{split}" for split in ("train", "dev", "test")],
        "TREC": ["transfer/TREC/train_5500.label", "transfer/TREC/TREC_10.label"],
        "MRPC": ["transfer/MRPC/msr_paraphrase_train.txt", "transfer/MRPC/msr_paraphrase_test.txt"],
    }
    if task not in fixed:
        raise IsbertError(f"unknown task '{task}'; valid tasks: {', '.join(ALL_TASKS)}")
    return fixed[task]


# ----------------------------------------------------------------------------------------------------
# low-level readers


def read_lines(path: str | os.PathLike[str], encoding: str = "utf-8") -> list[str]:
    """Lines of a text file: a leading BOM and CR of CRLF endings removed, no final empty line.

    Splits on ``\\n`` only (not ``str.splitlines``), so stray form feeds inside a sentence cannot shift pairs.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IsbertError(f"missing data file: {path}; {GET_DATA_HINT}") from None
    except OSError as error:  # a folder in its place, no permission, an I/O error
        raise IsbertError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            str(path), line, f"not valid {encoding}: byte 0x{data[error.start]:02x} at offset {error.start}"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _float(value: str, path: Path, line: int, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(str(path), line, f"{what} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise InputError(str(path), line, f"{what} is not finite: {value!r}")
    return number


def check_count(path: Path | str, found: int, expected: int | None, what: str = "pairs") -> None:
    """Raise naming ``path`` when a file holds a different number of items than the known release."""
    if expected is not None and found != expected:
        raise IsbertError(f"{path}: found {found} {what}, expected {expected} (incomplete or different version?)")


# ----------------------------------------------------------------------------------------------------
# STS parsers


def read_sts_pairs(input_path: str | os.PathLike[str], gold_path: str | os.PathLike[str]) -> StsSubset:
    """SemEval STS input (``s1 TAB s2``, or 4 columns with the sources in raw STS16) + gold file (one score
    per line; an EMPTY line marks an unscored pair, which is dropped as SentEval does)."""
    input_path, gold_path = Path(input_path), Path(gold_path)
    inputs, golds = read_lines(input_path), read_lines(gold_path)
    if len(inputs) != len(golds):
        raise InputError(
            str(gold_path),
            None,
            f"{len(golds)} lines, but {input_path.name} has {len(inputs)}: pairs do not line up",
        )
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for number, (pair, gold) in enumerate(zip(inputs, golds, strict=True), start=1):
        if not gold.strip():
            continue
        score = _float(gold.strip(), gold_path, number, "gold score")
        columns = pair.split("\t")
        if len(columns) not in (2, 4):
            raise InputError(str(input_path), number, f"expected 2 (or 4) tab-separated columns, found {len(columns)}")
        s1.append(columns[0])
        s2.append(columns[1])
        scores.append(score)
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


def read_stsb(path: str | os.PathLike[str]) -> StsSubset:
    """STS Benchmark csv: TAB-separated, no quoting (sentences contain ``"``), 7 or 9 columns (two optional
    source columns at the end); score in column 5, sentences in columns 6 and 7."""
    path = Path(path)
    lines = read_lines(path)
    allow_long_csv_fields()
    s1, s2, scores = [], [], []
    for number, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
        if len(row) not in (7, 9):
            raise InputError(str(path), number, f"expected 7 or 9 tab-separated columns, found {len(row)}")
        scores.append(_float(row[4], path, number, "score"))
        s1.append(row[5])
        s2.append(row[6])
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


def read_sick(path: str | os.PathLike[str]) -> StsSubset:
    """SICK SemEval-2014 file: header, then ``pair_ID sentence_A sentence_B relatedness entailment`` (TAB)."""
    path = Path(path)
    lines = read_lines(path)
    if not lines or not lines[0].startswith("pair_ID"):
        raise InputError(str(path), 1, "expected the header line 'pair_ID<TAB>sentence_A<TAB>...'")
    s1, s2, scores = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        row = line.split("\t")
        if len(row) != 5:
            raise InputError(str(path), number, f"expected 5 tab-separated columns, found {len(row)}")
        s1.append(row[1])
        s2.append(row[2])
        scores.append(_float(row[3], path, number, "relatedness score"))
    return StsSubset(s1, s2, np.asarray(scores, dtype=np.float64))


# ----------------------------------------------------------------------------------------------------
# transfer parsers (SentEval's readers; whitespace-normalised texts, an empty line becomes ".")


def _norm(text: str) -> str:
    return " ".join(text.split()) or "."


def read_binary(pos_path: str | os.PathLike[str], neg_path: str | os.PathLike[str]) -> LabeledSplit:
    """MR/CR/SUBJ/MPQA: one sentence per line in a positive and a negative file (pos first, as SentEval)."""
    pos, neg = read_lines(pos_path), read_lines(neg_path)
    return _sentevals_order(pos + neg, [1] * len(pos) + [0] * len(neg))


def _sentevals_order(texts: list[str], labels: list[int]) -> LabeledSplit:
    """Sort by (token count, label), stably, as SentEval does before encoding: its folds follow that order."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i].split()), labels[i]))
    return LabeledSplit([_norm(texts[i]) for i in order], np.asarray([labels[i] for i in order], dtype=np.int64))


def read_sst(path: str | os.PathLike[str]) -> LabeledSplit:
    """SST (SIF release): ``sentence TAB label`` per line."""
    path = Path(path)
    texts, labels = [], []
    for number, line in enumerate(read_lines(path), start=1):
        row = line.strip().split("\t")
        digits = row[1].strip().removeprefix("-") if len(row) == 2 else ""
        if not (digits.isascii() and digits.isdigit()):  # not str.isdigit alone: it accepts '²', which int() refuses
            raise InputError(str(path), number, "expected 'sentence<TAB>integer label'")
        texts.append(row[0])
        labels.append(int(row[1]))
    return _sentevals_order(texts, labels)


def read_trec(path: str | os.PathLike[str]) -> LabeledSplit:
    """TREC question classification (Latin-1): ``COARSE:fine question``; labels: the 6 coarse classes."""
    path = Path(path)
    texts, labels = [], []
    for number, line in enumerate(read_lines(path, encoding="latin-1"), start=1):
        target, sep, rest = line.strip().partition(":")
        parts = rest.split(" ", 1)
        if not sep or target not in TREC_CLASSES or len(parts) != 2:
            raise InputError(
                str(path), number, f"expected 'CLASS:fine question' with CLASS in {', '.join(TREC_CLASSES)}"
            )
        texts.append(parts[1])
        labels.append(TREC_CLASSES.index(target))
    return _sentevals_order(texts, labels)


def read_mrpc(path: str | os.PathLike[str]) -> LabeledSplit:
    """MRPC: UTF-8 with BOM, header line, then ``Quality  #1 ID  #2 ID  #1 String  #2 String``."""
    path = Path(path)
    lines = read_lines(path)
    if not lines or not lines[0].startswith("Quality"):
        raise InputError(str(path), 1, "expected the header line 'Quality<TAB>#1 ID<TAB>...'")
    rows: list[tuple[str, str, int]] = []
    for number, line in enumerate(lines[1:], start=2):
        row = line.strip("\r\n").split("\t")
        if len(row) != 5 or row[0] not in ("0", "1"):
            raise InputError(str(path), number, f"expected 5 tab-separated columns with label 0/1, found {len(row)}")
        rows.append((_norm(row[3]), _norm(row[4]), int(row[0])))
    rows.sort(key=lambda r: (len(r[0].split()), len(r[1].split()), r[2]))
    return LabeledSplit(
        [r[0] for r in rows], np.asarray([r[2] for r in rows], dtype=np.int64), texts_b=[r[1] for r in rows]
    )


# ----------------------------------------------------------------------------------------------------
# task loading


def load_task(task: str, data_dir: str | os.PathLike[str], text: TextVariant = "senteval") -> StsTask | TransferTask:
    """Parse one task from the data folder and check its size against the known release."""
    root = Path(data_dir)
    files = [root / rel for rel in task_files(task, text)]
    if task in STS_SUBSETS:
        subsets: dict[str, StsSubset] = {}
        for (name, expected), i in zip(STS_SUBSETS[task].items(), range(0, len(files), 2), strict=True):
            subset = read_sts_pairs(files[i], files[i + 1])
            check_count(files[i + 1], len(subset), expected, "scored pairs")
            subsets[name] = subset
        return StsTask(task, subsets, files)
    if task in ("STSBenchmark", "SICK-R"):
        reader = read_stsb if task == "STSBenchmark" else read_sick
        subset = reader(files[0])
        check_count(files[0], len(subset), EXPECTED_COUNTS[task])
        return StsTask(task, {task: subset}, files)
    if task in ("MR", "CR", "SUBJ", "MPQA"):
        split = read_binary(files[0], files[1])
        check_count(f"{files[0]} + {files[1].name}", len(split), EXPECTED_COUNTS[task], "sentences")
        return TransferTask(task, "cv", {"all": split}, files)
    names = ("train", "dev", "test") if task == "SST2" else ("train", "test")
    reader_fn: Callable[[Path], LabeledSplit] = {"SST2": read_sst, "TREC": read_trec, "MRPC": read_mrpc}[task]
    splits = {}
    for name, path in zip(names, files, strict=True):
        splits[name] = reader_fn(path)
        check_count(path, len(splits[name]), EXPECTED_COUNTS[f"{task}/{name}"], "examples")
    return TransferTask(task, "dev" if task == "SST2" else "kfold", splits, files)


TASK_CORPORA = {
    "stsb-train": ("sts/STSBenchmark/senteval/sts-train.csv", read_stsb),
    "sick-train": ("sts/SICK/senteval/SICK_train.txt", read_sick),
}
"""Unlabeled in-domain corpora: the sentences of a task's *training* split (the test split stays unseen)."""


def task_corpus_sentences(name: str, data_dir: str | os.PathLike[str]) -> list[str]:
    """The distinct sentences of a task's training split, in order of first appearance, scores dropped.

    In the same (SentEval) text form as the evaluation files, so that in-domain training sees what the test sees.
    """
    if name not in TASK_CORPORA:
        raise IsbertError(f"unknown task corpus '{name}'; valid: {', '.join(TASK_CORPORA)}")
    relative, reader = TASK_CORPORA[name]
    path = Path(data_dir) / relative
    if not path.is_file():
        raise IsbertError(f"{path}: not found (task corpus '{name}'). {GET_DATA_HINT}")
    pairs = reader(path)
    return list(dict.fromkeys(text for pair in zip(pairs.sentences1, pairs.sentences2, strict=True) for text in pair))


# ----------------------------------------------------------------------------------------------------
# checksums and `isbert data check`


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(files: Iterable[Path], root: Path) -> dict[str, str]:
    """sha256 of each file, keyed by its path relative to the data folder (recorded in the JSON results)."""
    return {str(Path(f).relative_to(root)) if Path(f).is_relative_to(root) else str(f): sha256_file(f) for f in files}


@dataclass
class CheckLine:
    ok: bool
    message: str


def check_data(
    data_dir: str | os.PathLike[str] | None,
    tasks: Iterable[str] = ALL_TASKS,
    texts: Iterable[TextVariant] = ("senteval", "raw"),
) -> list[CheckLine]:
    """Verify layout, counts and checksums of every task's files; one line per task and text variant."""
    root = resolve_data_dir(data_dir)
    report: list[CheckLine] = []
    for task in tasks:
        variants: tuple[TextVariant, ...] = tuple(texts) if task in STS_TASKS else ("senteval",)
        for text in variants:
            label = f"{task} ({text})" if task in STS_TASKS else task
            missing = [rel for rel in task_files(task, text) if not (root / rel).is_file()]
            if missing:
                report.append(CheckLine(False, f"{label}: missing {', '.join(missing)}"))
                continue
            try:
                loaded = load_task(task, root, text)
            except IsbertError as error:
                report.append(CheckLine(False, f"{label}: {error}"))
                continue
            bad = [
                rel
                for rel in task_files(task, text)
                if rel in KNOWN_SHA256 and sha256_file(root / rel) != KNOWN_SHA256[rel]
            ]
            if isinstance(loaded, StsTask):
                size = f"{sum(len(s) for s in loaded.subsets.values())} pairs"
            else:
                size = " / ".join(f"{name} {len(split)}" for name, split in loaded.splits.items())
            if bad:
                report.append(CheckLine(False, f"{label}: counts ok ({size}) but checksum differs: {', '.join(bad)}"))
            else:
                report.append(CheckLine(True, f"{label}: ok, {size}, checksums match"))
    return report


# ----------------------------------------------------------------------------------------------------
# `isbert data download` lives in isbert.evaluation.download (it imports this module's tables); its names stay
# importable from here, looked up lazily so that neither module imports the other at load time.

_DOWNLOAD_NAMES = frozenset(
    {
        "DEFAULT_MAX_DOWNLOAD_MB",
        "DEFAULT_MAX_EXTRACT_MB",
        "NoDowngradeRedirects",
        "Source",
        "copy_capped",
        "default_sources",
        "download",
        "load_sources",
        "_extract",
        "_map_member",
        "_safe_target",
        "_verify_download",
    }
)


def __getattr__(name: str) -> object:
    if name in _DOWNLOAD_NAMES:
        return getattr(importlib.import_module("isbert.evaluation.download"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
