"""Batch inference: a prompt over many rows, fanned out as Cloud Tasks, optionally evaluated.

    create (jobs) ──► one task per chunk (chunks) ──► run a chunk (runner) ──► chunk done
                                                      │ calls (bounded pool), cache, budget
                                                      ▼
                    last chunk done (completion) ──► batch-completed ──► evaluation_step

Rooms: `jobs` (create/get/cancel), `admission` (request checks, per-tenant job cap), `state`
(the job state machine), `chunks` (split, task names, enqueue), `source` (inline or dataset
rows), `runner` (one chunk), `calls` (one model call, failures classified), `writer`
(create-if-absent results), `cache`, `budget`, `completion`, `events` (Pub/Sub),
`evaluation_step`, `results` (the results listing), `view` (a job as the API shows it),
`delivery` (a task's HTTP request), `paths` (Firestore layout), `aggregate` (count/sum queries),
`options` (tunables). Heavy clients are imported where used, so each function loads only its own.
"""
