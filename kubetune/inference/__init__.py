"""Trying a finished job's model: `kubetune predict`, `kubetune chat` and `pipeline_for_job`.

    final_model.py          which folder holds a job's final model (also after
                            `delete --keep-outputs`), its task, its base model; clear errors
                            for a job not found, not finished, or without a model
    pipelines.py            the model loaded with plain transformers/PEFT as a transformers
                            pipeline (`pipeline_for_job`)
    question_answering.py   the extractive question-answering pipeline (transformers 5 has none)
    answers.py              a pipeline's answers as lines of text or JSON
    generation.py           a causal LM's text for a chat or a prompt, streamed or not
    chat.py                 the interactive chat loop (chat template, streamed tokens)

Depends on `kubetune.training` (the Backend interface finds the outputs) and
`kubetune.contract`.
"""
