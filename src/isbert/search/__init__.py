"""Applications of sentence embeddings: semantic search, clustering, paraphrase mining and an HTTP service.

Each concept lives in its own module: ``corpus`` (read and embed a text file in chunks), ``index`` (a faiss index
folder with its texts and the identity of its model), ``cluster``, ``similar`` (near-duplicate pairs), ``serve``
(the FastAPI service) and ``cli`` (the ``index``, ``search``, ``cluster``, ``similar`` and ``serve`` commands).
The heavy dependencies (faiss, FastAPI, uvicorn, matplotlib) are imported by those modules only.
"""
