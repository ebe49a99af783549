// Built against the installed library through pkg-config by install-test.sh.
#include <cnnlite/cnnlite.h>

#include <cstdio>
#include <memory>

struct tensor_deleter {
    void operator()(cnnl_tensor *t) const { cnnl_tensor_free(t); }
};
using tensor_ptr = std::unique_ptr<cnnl_tensor, tensor_deleter>;

int main()
{
    const int64_t shape[2] = {2, 2};
    cnnl_tensor *raw = nullptr;
    if (cnnl_tensor_zeros(&raw, 2, shape) != CNNL_OK) {
        std::fprintf(stderr, "error: %s\n", cnnl_last_error());
        return 1;
    }
    tensor_ptr t(raw);
    cnnl_tensor_fill(t.get(), 2.5f);
    const int64_t bad[2] = {2, 0};
    cnnl_tensor *none = nullptr;
    cnnl_status st = cnnl_tensor_zeros(&none, 2, bad);
    bool ok = cnnl_tensor_data(t.get())[3] == 2.5f && st == CNNL_EINVAL && none == nullptr;
    std::printf("C++ consumer: %s (%s: %s)\n", ok ? "ok" : "WRONG", cnnl_status_string(st), cnnl_last_error());
    return ok ? 0 : 1;
}
