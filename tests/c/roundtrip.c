/*
 * A game's world through tickcast's C ABI, on loopback, using nothing but
 * tickcast.h: a receiver on 127.0.0.1:0 and a broadcaster to it, first on
 * tickcast's clock, then on the game's. About 1,000 entities a frame; ids
 * that are multiples of 10 are despawned from frame 30 on, and ids 5000..
 * spawn one a frame. The receiver's world must end equal to the last frame
 * published, nothing may be lost, the despawns must arrive as events, and
 * the samples must cover the world.
 *
 * Exits 0 only if every check passed; prints each failed check otherwise.
 * Run by tests/ffi_c.rs, which compiles it with -Wall -Wextra -Werror.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tickcast.h"

#define BASE 1000        /* ids 0..BASE-1 at the start */
#define DESPAWN_FROM 30  /* from this frame on, multiples of 10 are gone */
#define SPAWN_FIRST 5000 /* ids spawned one a frame from here */
#define SPAWN_MAX 40
#define CAP (BASE + SPAWN_MAX + 64)
#define DESPAWNED (BASE / 10)

static int failures = 0;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* The message of the latest failure on this thread. */
static const char *last_error(void) {
    static char buf[512];
    size_t len = 0;
    tc_status s = tc_last_error(buf, sizeof buf, &len);
    if (s != TC_OK && s != TC_ERR_BUFFER_TOO_SMALL) {
        snprintf(buf, sizeof buf, "(tc_last_error failed: %d)", (int)s);
    }
    return buf;
}

/* Whether `s` is TC_OK; if not, the failure is counted and printed. */
static int ok(tc_status s, const char *what) {
    if (s == TC_OK) {
        return 1;
    }
    failures++;
    fprintf(stderr, "FAILED: %s returned %d: %s\n", what, (int)s, last_error());
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The game's world at frame `step`, ascending by id; returns its size. */
static size_t world(int step, tc_entity *out) {
    size_t n = 0;
    for (uint32_t id = 0; id < BASE; id++) {
        if (step >= DESPAWN_FROM && id % 10 == 0) {
            continue;
        }
        out[n++] = (tc_entity){id, (float)id, (float)step, 0.5f};
    }
    int spawned = step < SPAWN_MAX ? step : SPAWN_MAX;
    for (int i = 0; i < spawned; i++) {
        out[n++] = (tc_entity){SPAWN_FIRST + (uint32_t)i, -1.0f, (float)step, 0.0f};
    }
    return n;
}

static tc_entity_state got[CAP];

/* Whether the receiver's latest frame is `want[0..n]`, complete. */
static int world_is(tc_receiver *r, const tc_entity *want, size_t n, tc_frame_info *info) {
    size_t m = 0;
    if (tc_receiver_world(r, got, CAP, &m, info) != TC_OK || m != n || !info->complete) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (got[i].id != want[i].id || got[i].x != want[i].x || got[i].y != want[i].y ||
            got[i].z != want[i].z) {
            return 0;
        }
    }
    return 1;
}

/* Waits up to `seconds` for the receiver's world to be `want[0..n]`. */
static int wait_world(tc_receiver *r, const tc_entity *want, size_t n, double seconds) {
    tc_frame_info info;
    double end = now_s() + seconds;
    while (now_s() < end) {
        if (world_is(r, want, n, &info)) {
            return 1;
        }
        sleep_ms(2);
    }
    return world_is(r, want, n, &info);
}

/* Waits up to `seconds` for the current session's goodbye. */
static int wait_goodbye(tc_receiver *r, double seconds) {
    tc_receive_figures f;
    double end = now_s() + seconds;
    while (now_s() < end) {
        if (tc_receiver_figures(r, &f, sizeof f) == TC_OK && f.goodbye) {
            return 1;
        }
        sleep_ms(2);
    }
    return 0;
}

static int start_receiver(tc_receiver **r, char *dest, size_t dest_len) {
    tc_receiver_config rc;
    if (!ok(tc_receiver_config_default(&rc, sizeof rc), "tc_receiver_config_default")) {
        return 0;
    }
    rc.bind = "127.0.0.1:0";
    if (!ok(tc_receiver_start(&rc, r), "tc_receiver_start")) {
        return 0;
    }
    uint16_t port = 0;
    ok(tc_receiver_local_port(*r, &port), "tc_receiver_local_port");
    CHECK(port != 0, "the receiver's port is 0");
    snprintf(dest, dest_len, "127.0.0.1:%u", (unsigned)port);
    return 1;
}

static int start_broadcaster(const char *dest, tc_clock clock, tc_broadcaster **b) {
    tc_broadcast_config bc;
    if (!ok(tc_broadcast_config_default(&bc, sizeof bc), "tc_broadcast_config_default")) {
        return 0;
    }
    bc.destinations = dest;
    bc.max_subscribers = 0;
    bc.rate_hz = 200.0;
    return ok(tc_broadcaster_start(&bc, clock, b), "tc_broadcaster_start");
}

/* Every event waiting, counted: the despawned ids must be exactly the
 * multiples of 10 below BASE, each once; `spawned` counts the spawns. */
static void check_events(tc_receiver *r, const char *half) {
    static tc_event events[256];
    int despawned[BASE] = {0};
    size_t n = 0, total = 0, spawned = 0, ended = 0, wrong = 0;
    do {
        if (!ok(tc_receiver_events(r, events, 256, &n), "tc_receiver_events")) {
            return;
        }
        for (size_t i = 0; i < n; i++) {
            tc_event e = events[i];
            if (e.kind == TC_EVENT_DESPAWNED) {
                if (e.id < BASE && e.id % 10 == 0) {
                    despawned[e.id]++;
                } else {
                    wrong++;
                }
            } else if (e.kind == TC_EVENT_SPAWNED) {
                spawned++;
            } else if (e.kind == TC_EVENT_STREAM_ENDED) {
                ended++;
            }
        }
        total += n;
    } while (n == 256);
    for (uint32_t id = 0; id < BASE; id += 10) {
        CHECK(despawned[id] == 1, "%s: %d despawn events for id %u, not 1", half, despawned[id],
              (unsigned)id);
    }
    CHECK(wrong == 0, "%s: %zu despawn events for ids never despawned", half, wrong);
    CHECK(spawned == BASE + SPAWN_MAX, "%s: %zu spawn events, not %d", half, spawned,
          BASE + SPAWN_MAX);
    CHECK(ended == 1, "%s: %zu stream-ended events, not 1", half, ended);
    printf("%s: %zu events (%zu spawned, %d despawned, %zu stream end)\n", half, total, spawned,
           DESPAWNED, ended);
}

/* Samples now: one per entity of the world, the same ids, x and z exact
 * (they never move), and if `y_bounded`, y between the first frame's and
 * the last's. (Under the game's clock the last frames came a millisecond
 * apart, so extrapolating past the newest runs far ahead in y.) */
static void check_samples(tc_receiver *r, const tc_entity *want, size_t n, int y_bounded,
                          const char *half) {
    static tc_sample samples[CAP];
    size_t m = 0;
    tc_status s = tc_receiver_sample(r, NULL, 0, &m);
    CHECK(s == TC_ERR_BUFFER_TOO_SMALL && m == n,
          "%s: sampling into no room gave %d with %zu needed, not %d with %zu", half, (int)s, m,
          (int)TC_ERR_BUFFER_TOO_SMALL, n);
    if (!ok(tc_receiver_sample(r, samples, CAP, &m), "tc_receiver_sample")) {
        return;
    }
    CHECK(m == n, "%s: %zu samples for %zu entities", half, m, n);
    size_t bad = 0;
    for (size_t i = 0; i < m && i < n; i++) {
        if (samples[i].id != want[i].id || samples[i].x != want[i].x ||
            samples[i].z != want[i].z ||
            (y_bounded && !(samples[i].y >= 0.0f && samples[i].y <= want[i].y)) ||
            samples[i].mode > TC_SAMPLE_SNAPPED) {
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %zu samples off their entity", half, bad);
    printf("%s: %zu entities sampled\n", half, m);
}

static void check_receive_figures(tc_receive_figures *f, const char *half) {
    CHECK(f->lost == 0, "%s: %llu packets lost", half, (unsigned long long)f->lost);
    CHECK(f->expected > 0 && f->received + f->lost == f->expected,
          "%s: received %llu + lost %llu != expected %llu", half,
          (unsigned long long)f->received, (unsigned long long)f->lost,
          (unsigned long long)f->expected);
    CHECK(f->entities_despawned == DESPAWNED, "%s: %llu entities despawned, not %d", half,
          (unsigned long long)f->entities_despawned, DESPAWNED);
    CHECK(f->malformed == 0, "%s: %llu malformed", half, (unsigned long long)f->malformed);
    printf("%s: received %llu of %llu packets, %llu lost, %llu entities despawned, "
           "latency p50 %llu ns\n",
           half, (unsigned long long)f->received, (unsigned long long)f->expected,
           (unsigned long long)f->lost, (unsigned long long)f->entities_despawned,
           (unsigned long long)f->latency_p50_ns);
}

static tc_entity frame[CAP];

static void tickcast_clock(void) {
    const char *half = "tickcast clock";
    tc_receiver *r = NULL;
    tc_broadcaster *b = NULL;
    char dest[64];
    if (!start_receiver(&r, dest, sizeof dest)) {
        return;
    }
    if (!start_broadcaster(dest, TC_CLOCK_TICKCAST, &b)) {
        ok(tc_receiver_stop(r, NULL, 0), "tc_receiver_stop");
        return;
    }
    CHECK(tc_broadcaster_send(b, 1, NULL, 0) == TC_ERR_WRONG_CLOCK,
          "%s: send is not TC_ERR_WRONG_CLOCK", half);
    CHECK(tc_broadcaster_publish(b, NULL, 5) == TC_ERR_INVALID_ARGUMENT,
          "%s: NULL entities with n 5 is not TC_ERR_INVALID_ARGUMENT", half);
    CHECK(strstr(last_error(), "entities is NULL") != NULL, "%s: message %s", half, last_error());

    size_t n = 0;
    for (int step = 0; step < 60; step++) {
        n = world(step, frame);
        ok(tc_broadcaster_publish(b, frame, n), "tc_broadcaster_publish");
        sleep_ms(5);
    }
    tc_entity bad = {1, NAN, 0.0f, 0.0f};
    CHECK(tc_broadcaster_publish(b, &bad, 1) == TC_ERR_BAD_COORDINATE,
          "%s: a NaN is not TC_ERR_BAD_COORDINATE", half);
    CHECK(strstr(last_error(), "entity 1 ") != NULL, "%s: message %s", half, last_error());

    CHECK(wait_world(r, frame, n, 5.0), "%s: the receiver's world never became the last frame",
          half);
    size_t needed = 0;
    CHECK(tc_receiver_world(r, NULL, 0, &needed, NULL) == TC_ERR_BUFFER_TOO_SMALL &&
              needed == n,
          "%s: a world into no room is not TC_ERR_BUFFER_TOO_SMALL with %zu needed (%zu)", half,
          n, needed);

    tc_broadcast_figures small;
    CHECK(tc_broadcaster_figures(b, &small, 8) == TC_ERR_INVALID_ARGUMENT,
          "%s: figures into 8 bytes are not TC_ERR_INVALID_ARGUMENT", half);
    CHECK(strstr(last_error(), "out's size is 8 bytes") != NULL, "message: %s", last_error());
    tc_broadcast_figures bf;
    CHECK(tc_broadcaster_figures(b, &bf, sizeof bf) == TC_OK && bf.frames_sent > 0 && bf.size == sizeof bf,
          "%s: live figures show no frame sent", half);
    if (ok(tc_broadcaster_stop(b, &bf, sizeof bf), "tc_broadcaster_stop")) {
        CHECK(bf.frames_committed == 60, "%s: %llu frames committed, not 60", half,
              (unsigned long long)bf.frames_committed);
        CHECK(bf.frames_sent > 0, "%s: no frame sent", half);
        CHECK(bf.frames_refused == 0, "%s: %llu frames refused", half,
              (unsigned long long)bf.frames_refused);
        CHECK(bf.despawned == DESPAWNED, "%s: %llu despawned, not %d", half,
              (unsigned long long)bf.despawned, DESPAWNED);
        CHECK(bf.live_entities == n, "%s: %llu live entities, not %zu", half,
              (unsigned long long)bf.live_entities, n);
        CHECK(bf.finished == 1, "%s: not finished after stop", half);
        printf("%s: %llu frames committed, %llu ticks sent as %llu packets\n", half,
               (unsigned long long)bf.frames_committed, (unsigned long long)bf.frames_sent,
               (unsigned long long)bf.packets_sent);
    }
    CHECK(wait_goodbye(r, 5.0), "%s: no goodbye arrived", half);
    CHECK(world_is(r, frame, n, &(tc_frame_info){0}), "%s: the world changed after the goodbye",
          half);
    check_events(r, half);
    check_samples(r, frame, n, 1, half);
    tc_receive_figures rf;
    if (ok(tc_receiver_stop(r, &rf, sizeof rf), "tc_receiver_stop")) {
        check_receive_figures(&rf, half);
        /* A stopped handle is refused, not freed memory read or freed again. */
        CHECK(tc_receiver_stop(r, NULL, 0) == TC_ERR_INVALID_ARGUMENT,
              "%s: a second stop is not TC_ERR_INVALID_ARGUMENT", half);
        CHECK(strstr(last_error(), "not a live handle") != NULL, "%s: a second stop: %s", half,
              last_error());
    }
}

static void game_clock(void) {
    const char *half = "game clock";
    tc_receiver *r = NULL;
    tc_broadcaster *b = NULL;
    char dest[64];
    if (!start_receiver(&r, dest, sizeof dest)) {
        return;
    }
    if (!start_broadcaster(dest, TC_CLOCK_GAME, &b)) {
        ok(tc_receiver_stop(r, NULL, 0), "tc_receiver_stop");
        return;
    }
    CHECK(tc_broadcaster_publish(b, NULL, 0) == TC_ERR_WRONG_CLOCK,
          "%s: publish is not TC_ERR_WRONG_CLOCK", half);
    size_t n = 0;
    int late = 0;
    for (int step = 0; step < 50; step++) {
        n = world(step, frame);
        uint64_t tick = 100 + (uint64_t)step;
        if (!ok(tc_broadcaster_send(b, tick, frame, n), "tc_broadcaster_send")) {
            break;
        }
        /* Each frame goes out at once: the receiver has it soon. */
        tc_frame_info info = {0};
        size_t m = 0;
        double end = now_s() + 2.0;
        while (now_s() < end) {
            tc_status s = tc_receiver_world(r, got, CAP, &m, &info);
            if (s == TC_OK && info.has_frame && info.tick == tick) {
                break;
            }
            sleep_ms(1);
        }
        if (info.tick != tick) {
            late++;
        }
    }
    CHECK(late == 0, "%s: %d of 50 ticks never arrived within 2 s", half, late);
    CHECK(tc_broadcaster_send(b, 120, frame, n) == TC_ERR_TICK_NOT_AFTER,
          "%s: tick 120 after 149 is not TC_ERR_TICK_NOT_AFTER", half);
    /* An id listed twice is refused at once, nothing sent. */
    tc_entity twice[2] = {{0}};
    CHECK(tc_broadcaster_send(b, 150, twice, 2) == TC_ERR_BAD_FRAME,
          "%s: an id twice is not TC_ERR_BAD_FRAME", half);
    CHECK(strstr(last_error(), "appears twice") != NULL,
          "%s: the message of an id twice: %s", half, last_error());
    CHECK(wait_world(r, frame, n, 5.0), "%s: the receiver's world is not the last frame", half);
    tc_broadcast_figures bf;
    if (ok(tc_broadcaster_stop(b, &bf, sizeof bf), "tc_broadcaster_stop")) {
        CHECK(bf.frames_sent == 50, "%s: %llu frames sent, not 50", half,
              (unsigned long long)bf.frames_sent);
        CHECK(bf.frames_committed == 50, "%s: %llu frames committed, not 50", half,
              (unsigned long long)bf.frames_committed);
        CHECK(bf.despawned == DESPAWNED, "%s: %llu despawned, not %d", half,
              (unsigned long long)bf.despawned, DESPAWNED);
        printf("%s: %llu frames sent as %llu packets\n", half,
               (unsigned long long)bf.frames_sent, (unsigned long long)bf.packets_sent);
    }
    CHECK(wait_goodbye(r, 5.0), "%s: no goodbye arrived", half);
    check_events(r, half);
    check_samples(r, frame, n, 0, half);
    tc_receive_figures rf;
    if (ok(tc_receiver_stop(r, &rf, sizeof rf), "tc_receiver_stop")) {
        check_receive_figures(&rf, half);
        CHECK(rf.has_count && rf.count == 149, "%s: count %llu, not 149", half,
              (unsigned long long)rf.count);
    }
}

/* What the ABI says about bad arguments, before anything runs. */
static void arguments(void) {
    const char *v = tc_version();
    CHECK(v != NULL && v[0] >= '0' && v[0] <= '9', "tc_version is not a version");
    CHECK(tc_abi_version() == TC_ABI_VERSION, "the library was built from another header");
    tc_broadcast_config bc;
    ok(tc_broadcast_config_default(&bc, sizeof bc), "tc_broadcast_config_default");
    CHECK(bc.rate_hz == 60.0 && bc.max_subscribers == 64, "the defaults are not 60 Hz and 64");
    bc.destinations = "127.0.0.1:9";
    bc.rate_hz = 0.0;
    tc_broadcaster *b = (tc_broadcaster *)&bc; /* not NULL: start must clear it */
    CHECK(tc_broadcaster_start(&bc, TC_CLOCK_TICKCAST, &b) == TC_ERR_CONFIG && b == NULL,
          "a rate of 0 is not TC_ERR_CONFIG with a NULL handle");
    CHECK(strstr(last_error(), "tick rate 0 Hz") != NULL, "message: %s", last_error());
    size_t len = 0;
    CHECK(tc_last_error(NULL, 0, &len) == TC_ERR_BUFFER_TOO_SMALL && len == strlen(last_error()),
          "tc_last_error does not size its message");
    bc.rate_hz = 60.0;
    CHECK(tc_broadcaster_start(&bc, 7, &b) == TC_ERR_INVALID_ARGUMENT && b == NULL,
          "clock 7 is not TC_ERR_INVALID_ARGUMENT");
    CHECK(tc_broadcaster_start(NULL, TC_CLOCK_TICKCAST, &b) == TC_ERR_INVALID_ARGUMENT,
          "a NULL config is not TC_ERR_INVALID_ARGUMENT");
    CHECK(tc_broadcaster_figures(NULL, NULL, 0) == TC_ERR_INVALID_ARGUMENT,
          "figures of NULL is not TC_ERR_INVALID_ARGUMENT");
    CHECK(tc_broadcaster_stop(NULL, NULL, 0) == TC_ERR_INVALID_ARGUMENT,
          "stopping NULL is not TC_ERR_INVALID_ARGUMENT");
    CHECK(tc_receiver_stop(NULL, NULL, 0) == TC_ERR_INVALID_ARGUMENT,
          "stopping NULL is not TC_ERR_INVALID_ARGUMENT");
    tc_receiver_config rc;
    ok(tc_receiver_config_default(&rc, sizeof rc), "tc_receiver_config_default");
    CHECK(rc.gro == 1, "GRO is not on by default");
    CHECK(rc.realtime_priority == 0 && rc.cpu == -1 && bc.realtime_priority == 0 && bc.cpu == -1,
          "the default threads are not ordinary and unpinned");
    rc.bind = "127.0.0.1:0";
    rc.realtime_priority = 100;
    tc_receiver *none = NULL;
    CHECK(tc_receiver_start(&rc, &none) == TC_ERR_CONFIG && none == NULL,
          "SCHED_FIFO priority 100 is not TC_ERR_CONFIG");
    rc.bind = NULL;
    rc.realtime_priority = 0;
    tc_receiver *r = NULL;
    tc_receiver_config unfilled = {0};
    CHECK(tc_receiver_start(&unfilled, &r) == TC_ERR_INVALID_ARGUMENT && r == NULL,
          "a config not filled by its _default is not TC_ERR_INVALID_ARGUMENT");
    CHECK(strstr(last_error(), "config->size is 0") != NULL, "message: %s", last_error());
    CHECK(rc.size == sizeof rc, "the default's size is %llu, not sizeof %zu",
          (unsigned long long)rc.size, sizeof rc);
    CHECK(tc_receiver_start(&rc, &r) == TC_ERR_CONFIG && r == NULL,
          "a receiver with nothing to listen to is not TC_ERR_CONFIG");
    CHECK(strstr(last_error(), "nothing to listen to") != NULL, "message: %s", last_error());
    rc.bind = "not an address";
    CHECK(tc_receiver_start(&rc, &r) == TC_ERR_CONFIG && r == NULL,
          "a bad bind address is not TC_ERR_CONFIG");
    CHECK(strncmp(last_error(), "bind: ", 6) == 0, "message: %s", last_error());
}

int main(void) {
    printf("tickcast %s\n", tc_version());
    arguments();
    tickcast_clock();
    game_clock();
    if (failures > 0) {
        printf("roundtrip: %d checks failed\n", failures);
        return 1;
    }
    printf("roundtrip: every check passed\n");
    return 0;
}
