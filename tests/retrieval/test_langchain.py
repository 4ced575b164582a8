"""Grounded's retriever inside a real LangChain chain (prompt → chat model → parser)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from api.container import Container
from api.worker import Worker
from data.scope import Scope
from retrieval.langchain import GroundedRetriever
from retrieval.search import Filters

DOCS = {
    "canteen.md": b"# Canteen\n\nOn Fridays the canteen serves fish and chips.\n",
    "parking.md": b"# Parking\n\nVisitors park in the north lot next to the loading bay.\n",
}


def test_retriever_in_a_rag_chain(client: TestClient, container: Container) -> None:
    for name, data in DOCS.items():
        client.post("/v1/documents", files={"file": (name, data)})
    Worker(container).run_until_idle()
    retriever = GroundedRetriever(
        retriever=container.retriever,
        sessions=container.sessions,
        scope=Scope.everything(),
        top_k=1,
    )
    seen: list[str] = []

    def fmt(docs: list[LCDocument]) -> str:
        text = "\n".join(f"[{d.metadata['filename']}] {d.page_content}" for d in docs)
        seen.append(text)
        return text

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context:\n{context}"), ("human", "{question}")]
    )
    llm = FakeListChatModel(responses=["Fish and chips."])
    chain = (
        {"context": retriever | RunnableLambda(fmt), "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    assert chain.invoke("What does the canteen serve on Fridays?") == "Fish and chips."
    assert seen == ["[canteen.md] # Canteen\n\nOn Fridays the canteen serves fish and chips."]

    docs = retriever.invoke("where do visitors park")
    assert docs[0].metadata["filename"] == "parking.md" and docs[0].metadata["score"] > 0.3
    assert {"chunk_id", "document_id", "page_start", "heading"} <= set(docs[0].metadata)
    only = retriever.model_copy(update={"filters": Filters(filename="canteen*")})
    assert only.invoke("where do visitors park")[0].metadata["filename"] == "canteen.md"
