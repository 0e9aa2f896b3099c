// MUST NOT compile (tests/test_typescript_types.py runs tsc expecting an error here): a task's contact person
// may be null, so reading its name without a check is a type error.
import type { components } from "./api";

export function contactName(task: components["schemas"]["TaskOut"]): string {
    return task.contact_person.full_name;
}
