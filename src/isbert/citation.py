"""The IS-BERT paper's BibTeX entry, cited by model cards, the loss and the README."""

ISBERT_BIBTEX = """@inproceedings{zhang-etal-2020-unsupervised,
    title = "An Unsupervised Sentence Embedding Method by Mutual Information Maximization",
    author = "Zhang, Yan and He, Ruidan and Liu, Zuozhu and Lim, Kwan Hui and Bing, Lidong",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    year = "2020",
    pages = "1601--1610",
    url = "https://arxiv.org/abs/2009.12061",
}"""
