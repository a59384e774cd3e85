/* A libfcgi C responder: the practical ceiling. FCGX_Accept_r on fd 0. */
#include <fcgiapp.h>
#include <string.h>

static char big[64 * 1024];

int main(void) {
    FCGX_Request request;
    memset(big, 'x', sizeof big);
    FCGX_Init();
    FCGX_InitRequest(&request, 0, 0);
    while (FCGX_Accept_r(&request) >= 0) {
        const char *uri = FCGX_GetParam("REQUEST_URI", request.envp);
        FCGX_PutS("Content-Type: text/plain\r\n\r\n", request.out);
        if (uri && strcmp(uri, "/64k") == 0) FCGX_PutStr(big, sizeof big, request.out);
        else FCGX_PutS("Hello, world!\n", request.out);
        FCGX_Finish_r(&request);
    }
    return 0;
}
