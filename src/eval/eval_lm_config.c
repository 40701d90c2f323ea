/* eval_lm_config: the lm evaluator's architecture from a Hugging Face config.json. */
#include "evallmimpl.h"
#include <jansson.h>
#include <sys/stat.h>

/* an integer key (or the first of two names: GPT-2 and Llama spell them differently); def < 0: required */
static int GetInt(json_t *o, const char *key, const char *alt, int64_t def, int64_t *v, char *msg, size_t len)
{
  json_t *x = json_object_get(o, key);
  if ((!x || json_is_null(x)) && alt) x = json_object_get(o, alt);
  if (!x || json_is_null(x)) {
    if (def >= 0) return *v = def, 0;
    return snprintf(msg, len, "the key \"%s\" is missing", key), 1;
  }
  if (!json_is_integer(x) || json_integer_value(x) <= 0) return snprintf(msg, len, "\"%s\" must be a positive integer", key), 1;
  *v = (int64_t)json_integer_value(x);
  return 0;
}

static int GetReal(json_t *o, const char *key, double def, double *v, char *msg, size_t len)
{
  json_t *x = json_object_get(o, key);
  if (!x || json_is_null(x)) return *v = def, 0;
  if (!json_is_number(x) || json_number_value(x) < 0) return snprintf(msg, len, "\"%s\" must be a non-negative number", key), 1;
  *v = json_number_value(x);
  return 0;
}

/*
  MapLMConfigRead - the architecture from config.json (path: the file or the checkpoint folder).
  gpt2: n_embd, n_layer, n_head, n_positions (or n_ctx), vocab_size, n_inner (null: 4 n_embd),
  layer_norm_epsilon, activation_function (gelu_new/gelu_pytorch_tanh, or gelu).
  llama: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
  num_key_value_heads, head_dim, max_position_embeddings, vocab_size, rms_norm_eps, rope_theta,
  tie_word_embeddings, hidden_act silu; rope_scaling must be null. Collective (same file on all ranks).
*/
PetscErrorCode MapLMConfigRead(MPI_Comm comm, const char *path, MapLMConfig *cfg)
{
  struct stat  st;
  json_error_t err;
  json_t      *o, *mt;
  char         msg[512] = "";
  int          bad      = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(cfg, sizeof(*cfg)));
  if (!stat(path, &st) && S_ISDIR(st.st_mode)) snprintf(cfg->path, sizeof(cfg->path), "%s/config.json", path);
  else PetscCall(PetscStrncpy(cfg->path, path, sizeof(cfg->path)));
  o = json_load_file(cfg->path, 0, &err);
  PetscCheck(o, comm, PETSC_ERR_FILE_OPEN, "-map_lm_config %s: cannot read a JSON config (%s, line %d)", cfg->path, err.text, err.line);
  mt = json_object_get(o, "model_type");
  if (!json_is_object(o) || !mt || !json_is_string(mt)) {
    json_decref(o);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "-map_lm_config %s: no string \"model_type\" (expected gpt2 or llama)", cfg->path);
  }
  const char *type = json_string_value(mt);
  if (!strcmp(type, "gpt2")) {
    cfg->arch = MAP_LM_GPT2;
    bad       = GetInt(o, "n_embd", NULL, -1, &cfg->E, msg, sizeof(msg)) || GetInt(o, "n_layer", NULL, -1, &cfg->nlayer, msg, sizeof(msg)) ||
          GetInt(o, "n_head", NULL, -1, &cfg->H, msg, sizeof(msg)) || GetInt(o, "n_positions", "n_ctx", -1, &cfg->npos, msg, sizeof(msg)) ||
          GetInt(o, "vocab_size", NULL, -1, &cfg->V, msg, sizeof(msg)) || GetReal(o, "layer_norm_epsilon", 1e-5, &cfg->eps, msg, sizeof(msg));
    if (!bad) bad = GetInt(o, "n_inner", NULL, 4 * cfg->E, &cfg->F, msg, sizeof(msg));
    cfg->Hkv        = cfg->H;
    json_t     *act = json_object_get(o, "activation_function");
    const char *a   = act && json_is_string(act) ? json_string_value(act) : "gelu_new";
    if (!bad && !strcmp(a, "gelu")) cfg->gelu_erf = PETSC_TRUE;
    else if (!bad && strcmp(a, "gelu_new") && strcmp(a, "gelu_pytorch_tanh"))
      bad = 1, snprintf(msg, sizeof(msg), "activation_function \"%s\" is not supported (gelu_new, gelu_pytorch_tanh or gelu)", a);
    if (!bad && cfg->E % cfg->H) bad = 1, snprintf(msg, sizeof(msg), "n_embd %lld is not a multiple of n_head %lld", (long long)cfg->E, (long long)cfg->H);
    cfg->D = bad ? 0 : cfg->E / cfg->H;
  } else if (!strcmp(type, "llama")) {
    cfg->arch = MAP_LM_LLAMA;
    bad       = GetInt(o, "hidden_size", NULL, -1, &cfg->E, msg, sizeof(msg)) || GetInt(o, "intermediate_size", NULL, -1, &cfg->F, msg, sizeof(msg)) ||
          GetInt(o, "num_hidden_layers", NULL, -1, &cfg->nlayer, msg, sizeof(msg)) ||
          GetInt(o, "num_attention_heads", NULL, -1, &cfg->H, msg, sizeof(msg)) ||
          GetInt(o, "max_position_embeddings", NULL, -1, &cfg->npos, msg, sizeof(msg)) ||
          GetInt(o, "vocab_size", NULL, -1, &cfg->V, msg, sizeof(msg)) || GetReal(o, "rms_norm_eps", 1e-6, &cfg->eps, msg, sizeof(msg)) ||
          GetReal(o, "rope_theta", 10000.0, &cfg->rope_theta, msg, sizeof(msg));
    if (!bad) bad = GetInt(o, "num_key_value_heads", NULL, cfg->H, &cfg->Hkv, msg, sizeof(msg));
    if (!bad) bad = GetInt(o, "head_dim", NULL, cfg->E / cfg->H, &cfg->D, msg, sizeof(msg));
    json_t *tie = json_object_get(o, "tie_word_embeddings"), *rs = json_object_get(o, "rope_scaling"), *act = json_object_get(o, "hidden_act"),
           *ab = json_object_get(o, "attention_bias"), *mb = json_object_get(o, "mlp_bias");
    cfg->tied = tie && json_is_true(tie) ? PETSC_TRUE : PETSC_FALSE;
    if (!bad && rs && !json_is_null(rs)) bad = 1, snprintf(msg, sizeof(msg), "rope_scaling is not supported (only plain RoPE: rope_scaling null)");
    if (!bad && act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
      bad = 1, snprintf(msg, sizeof(msg), "hidden_act must be \"silu\" (SwiGLU)");
    if (!bad && ((ab && json_is_true(ab)) || (mb && json_is_true(mb)))) bad = 1, snprintf(msg, sizeof(msg), "attention_bias / mlp_bias true is not supported");
    if (!bad && cfg->H % cfg->Hkv)
      bad = 1, snprintf(msg, sizeof(msg), "num_attention_heads %lld is not a multiple of num_key_value_heads %lld", (long long)cfg->H, (long long)cfg->Hkv);
    if (!bad && cfg->D % 2) bad = 1, snprintf(msg, sizeof(msg), "head dimension %lld is odd (RoPE rotates pairs)", (long long)cfg->D);
  } else {
    snprintf(msg, sizeof(msg), "model_type \"%s\" is not supported: the lm evaluator knows gpt2 and llama", type);
    bad = 1;
  }
  json_decref(o);
  PetscCheck(!bad, comm, PETSC_ERR_FILE_UNEXPECTED, "-map_lm_config %s: %s", cfg->path, msg);
  PetscFunctionReturn(0);
}
