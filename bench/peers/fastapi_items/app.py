"""The FastAPI full-stack template's items list, on FinStack's own tables: the peer of bench/compare.py.

    bench/.peers-venv/bin/uvicorn --app-dir bench/peers fastapi_items.app:app --port 8001

What the template's backend does for `GET /api/v1/items/?skip=&limit=` (app/api/deps.py, app/api/routes/items.py),
kept as it is there: a synchronous route (FastAPI runs it in its thread pool), a SQLModel `Session` per request from
`create_engine(url)` with SQLAlchemy's default pool, the OAuth2 bearer dependency that decodes the JWT (HS256) and
loads the user row with `session.get(User, sub)`, then `count()` of the whole list and an OFFSET/LIMIT page, answered
as `{data, count}` through the response model.

Only the tables are FinStack's, so that both apps serve the same rows from one database: `Item` maps the columns of
`tasks` that FinStack's task list shows (its `owner_id` is `created_by`, its `created_at` is `date_created`), and
`User` the columns of `users` that the template's user has. A manager or an admin is the template's superuser and
sees every item, as a FinStack manager sees every task; tasks in the trash (`deleted_at`) are left out as FinStack
leaves them out, and `id` breaks ties in the sort so that both apps page alike.

Settings come from the environment: PEER_DATABASE_URL (a `postgresql+psycopg://` URL) and PEER_SECRET_KEY (tokens
are made by bench/compare.py with that key: `{"sub": user id, "exp": ...}`, as the template's login would).
"""

import os
import uuid
from collections.abc import Generator
from datetime import datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from jwt.exceptions import InvalidTokenError
from pydantic import ValidationError
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select

API_V1_STR = "/api/v1"
ALGORITHM = "HS256"
SECRET_KEY = os.environ["PEER_SECRET_KEY"]

engine = create_engine(os.environ["PEER_DATABASE_URL"])


# --- models (app/models.py) --------------------------------------------------------------------------------------


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(primary_key=True)
    email: str
    full_name: str | None = None
    is_active: bool = True
    role: str
    password_hash: str  # the template's hashed_password: loaded with the row, as there

    @property
    def is_superuser(self) -> bool:
        return self.role in ("admin", "manager")


class ItemBase(SQLModel):
    entity_name: str
    task_type: str
    task_time: datetime
    note: str | None = None
    status: str
    priority: str


class Item(ItemBase, table=True):
    __tablename__ = "tasks"

    id: uuid.UUID = Field(primary_key=True)
    contact_person_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_by: uuid.UUID = Field(foreign_key="users.id")
    date_created: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    version: int
    project_id: uuid.UUID | None = None
    deleted_at: datetime | None = None


class ItemPublic(ItemBase):
    id: uuid.UUID
    contact_person_id: uuid.UUID | None
    created_by: uuid.UUID
    date_created: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    project_id: uuid.UUID | None


class ItemsPublic(SQLModel):
    data: list[ItemPublic]
    count: int


class TokenPayload(SQLModel):
    sub: str | None = None


# --- dependencies (app/api/deps.py) ------------------------------------------------------------------------------

reusable_oauth2 = OAuth2PasswordBearer(tokenUrl=f"{API_V1_STR}/login/access-token")


def get_db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str, Depends(reusable_oauth2)]


def get_current_user(session: SessionDep, token: TokenDep) -> User:
    try:
        payload = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])
        token_data = TokenPayload(**payload)
    except (InvalidTokenError, ValidationError) as exc:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="Could not validate credentials") from exc
    user = session.get(User, uuid.UUID(token_data.sub))
    if not user:
        raise HTTPException(status_code=404, detail="User not found")
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# --- routes (app/api/routes/items.py, utils.py) ------------------------------------------------------------------

items = APIRouter(prefix="/items", tags=["items"])
utils = APIRouter(prefix="/utils", tags=["utils"])


@items.get("/", response_model=ItemsPublic)
def read_items(session: SessionDep, current_user: CurrentUser, skip: int = 0, limit: int = 100) -> ItemsPublic:
    """Retrieve items."""
    live = col(Item.deleted_at).is_(None)
    if current_user.is_superuser:
        count_statement = select(func.count()).select_from(Item).where(live)
        statement = select(Item).where(live)
    else:
        owned = col(Item.created_by) == current_user.id
        count_statement = select(func.count()).select_from(Item).where(live, owned)
        statement = select(Item).where(live, owned)
    count = session.exec(count_statement).one()
    statement = statement.order_by(col(Item.date_created).desc(), col(Item.id).desc()).offset(skip).limit(limit)
    data = session.exec(statement).all()
    return ItemsPublic(data=[ItemPublic.model_validate(item) for item in data], count=count)


@utils.get("/health-check/")
def health_check() -> bool:
    return True


app = FastAPI(title="FastAPI items peer", openapi_url=f"{API_V1_STR}/openapi.json")
api_router = APIRouter()
api_router.include_router(items)
api_router.include_router(utils)
app.include_router(api_router, prefix=API_V1_STR)
