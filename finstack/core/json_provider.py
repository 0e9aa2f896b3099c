"""The app's JSON provider: decoding refuses text the database cannot store, for every JSON body at once."""

from flask.json.provider import DefaultJSONProvider

from finstack.core.schemas import unstorable_text_errors


class UnstorableTextError(ValueError):
    """A JSON document holds NUL or a lone surrogate; `errors` names the top-level fields that do."""

    def __init__(self, errors):
        super().__init__("JSON text holds characters the database cannot store")
        self.errors = errors


class FinStackJSONProvider(DefaultJSONProvider):
    def loads(self, s, **kwargs):
        data = super().loads(s, **kwargs)
        errors = unstorable_text_errors(data)
        if errors:
            raise UnstorableTextError(errors)
        return data
