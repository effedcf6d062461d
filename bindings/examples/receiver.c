/*
 * A game client in C over include/tickcast.h: listens on an address, reads
 * its events every 16 ms until the server says goodbye (or a time limit),
 * then reads the world it holds and prints its digest, the same FNV-1a over every
 * id and coordinate bit that examples/game_server.rs and game_client.rs
 * print, so the three can be compared.
 *
 *   cc -std=c11 -I include bindings/examples/receiver.c -L target/release -ltickcast \
 *      -Wl,-rpath,target/release -o receiver
 *   ./receiver 127.0.0.1:47475 30
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tickcast.h"

static uint64_t fnv(uint64_t h, uint32_t w) {
    for (int i = 0; i < 4; i++) {
        h = (h ^ ((w >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
    }
    return h;
}

static uint32_t bits(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

int main(int argc, char **argv) {
    const char *bind = argc > 1 ? argv[1] : "127.0.0.1:47475";
    int seconds = argc > 2 ? atoi(argv[2]) : 30;
    if (tc_abi_version() != TC_ABI_VERSION) {
        fprintf(stderr, "receiver: libtickcast was built from another tickcast.h\n");
        return 2;
    }
    tc_receiver_config rc;
    tc_receiver_config_default(&rc, sizeof rc);
    rc.bind = bind;
    tc_receiver *r;
    if (tc_receiver_start(&rc, &r) != TC_OK) {
        char msg[256];
        tc_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "receiver: %s\n", msg);
        return 2;
    }
    size_t cap = 1 << 20, n = 0;
    tc_entity_state *world = malloc(cap * sizeof *world);
    tc_event events[4096];
    int ended = 0;
    uint64_t despawned = 0;
    struct timespec frame = {0, 16 * 1000 * 1000};
    for (int i = 0; i < seconds * 60 && !ended; i++) {
        size_t k = 0;
        while (tc_receiver_events(r, events, 4096, &k) == TC_OK && k > 0) {
            for (size_t j = 0; j < k; j++) {
                despawned += events[j].kind == TC_EVENT_DESPAWNED;
                ended |= events[j].kind == TC_EVENT_STREAM_ENDED;
            }
            if (k < 4096) break;
        }
        nanosleep(&frame, NULL);
    }
    tc_frame_info info;
    if (tc_receiver_world(r, world, cap, &n, &info) != TC_OK) {
        fprintf(stderr, "receiver: world too large\n");
        tc_receiver_stop(r, NULL, 0);
        free(world);
        return 1;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h = fnv(h, world[i].id);
        h = fnv(h, bits(world[i].x));
        h = fnv(h, bits(world[i].y));
        h = fnv(h, bits(world[i].z));
    }
    tc_receive_figures f;
    tc_receiver_stop(r, &f, sizeof f);
    printf("c receiver: received %llu of %llu, %llu lost; despawned %llu\n",
           (unsigned long long)f.received, (unsigned long long)f.expected,
           (unsigned long long)f.lost, (unsigned long long)despawned);
    printf("final entities %zu digest %016llx\n", n, (unsigned long long)h);
    free(world);
    return ended ? 0 : 1;
}
